import { ApiPropertyOptional } from '@nestjs/swagger';
import { PageLimit } from '@lib/observability';
import { IsOptional, IsString, Matches } from 'class-validator';
import { TOPIC_PATTERN } from '@lib/contracts';

export class ListEventsQuery {
  @ApiPropertyOptional({ description: 'Only events of this topic', example: 'orders.created' })
  @IsOptional()
  @IsString()
  @Matches(new RegExp(TOPIC_PATTERN), { message: 'topic must be 1-255 characters of [A-Za-z0-9._:/-]' })
  topic?: string;

  @PageLimit()
  limit?: number;

  @ApiPropertyOptional({ description: 'The `next_cursor` of the previous page' })
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9_-]{1,32}$/, { message: 'cursor is not a cursor this service issued' })
  cursor?: string;
}
