import { ApiProperty } from '@nestjs/swagger';
import { IsString } from 'class-validator';

import { PutEntryBody } from './put-entry.dto.js';

/** The seed's `POST /cache/set {key, value}`: the key travels in the body. */
export class SetEntryBody extends PutEntryBody {
  @ApiProperty({ example: 'user:1', description: '1–100 characters of A-Z a-z 0-9 . _ : -' })
  @IsString()
  key!: string;
}
