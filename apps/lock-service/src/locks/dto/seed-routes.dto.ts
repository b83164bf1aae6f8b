import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { LOCK_CLIENT_ID_PATTERN, LOCK_MODES, LOCK_RESOURCE_PATTERN, type LockMode } from '@lib/contracts';
import { IsIn, IsInt, IsOptional, IsString, Matches, Min } from 'class-validator';

/** The seed's acquire body: `lock_type` is the mode. */
export class SeedAcquireDto {
  @ApiProperty({ example: 'my-resource' })
  @IsString()
  @Matches(LOCK_RESOURCE_PATTERN, { message: 'resource_id must be 1-100 characters of [A-Za-z0-9._:-]' })
  resource_id!: string;

  @ApiProperty({ example: 'my-app' })
  @IsString()
  @Matches(LOCK_CLIENT_ID_PATTERN, { message: 'client_id must be 1-128 characters of [A-Za-z0-9._:@-]' })
  client_id!: string;

  @ApiPropertyOptional({ enum: LOCK_MODES, default: 'exclusive' })
  @IsOptional()
  @IsIn(LOCK_MODES, { message: 'lock_type must be "exclusive" or "shared"' })
  lock_type?: LockMode;

  @ApiPropertyOptional({ minimum: 1 })
  @IsOptional()
  @IsInt()
  @Min(1)
  ttl_ms?: number;

  @ApiPropertyOptional({ minimum: 0, default: 0 })
  @IsOptional()
  @IsInt()
  @Min(0)
  wait_ms?: number;
}

/** The seed's release body: no token, the holder is found by client id. */
export class SeedReleaseDto {
  @ApiProperty({ example: 'my-resource' })
  @IsString()
  @Matches(LOCK_RESOURCE_PATTERN, { message: 'resource_id must be 1-100 characters of [A-Za-z0-9._:-]' })
  resource_id!: string;

  @ApiProperty({ example: 'my-app' })
  @IsString()
  @Matches(LOCK_CLIENT_ID_PATTERN, { message: 'client_id must be 1-128 characters of [A-Za-z0-9._:@-]' })
  client_id!: string;
}
