import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { LOCK_CLIENT_ID_PATTERN, LOCK_MODES, LOCK_RESOURCE_PATTERN, type LockMode } from '@lib/contracts';
import { IsIn, IsInt, IsOptional, IsString, Matches, Min } from 'class-validator';

const CLIENT_ID_RULE = 'must be 1-128 characters of [A-Za-z0-9._:@-]';
const RESOURCE_RULE = 'must be 1-100 characters of [A-Za-z0-9._:-]';

export class AcquireLockDto {
  @ApiProperty({
    description: 'Who asks: the holder, and the node of the wait-for graph',
    example: 'worker-1',
  })
  @IsString()
  @Matches(LOCK_CLIENT_ID_PATTERN, { message: `client_id ${CLIENT_ID_RULE}` })
  client_id!: string;

  @ApiPropertyOptional({ enum: LOCK_MODES, default: 'exclusive' })
  @IsOptional()
  @IsIn(LOCK_MODES, { message: 'mode must be "exclusive" or "shared"' })
  mode?: LockMode;

  @ApiPropertyOptional({
    description: 'Lease length; default LOCK_DEFAULT_TTL_MS, at most LOCK_MAX_TTL_MS',
    minimum: 1,
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  ttl_ms?: number;

  @ApiPropertyOptional({
    description: 'How long to wait in the queue; 0 (default) answers at once; at most LOCK_MAX_WAIT_MS',
    minimum: 0,
  })
  @IsOptional()
  @IsInt()
  @Min(0)
  wait_ms?: number;
}

export class ReleaseLockDto {
  @ApiProperty({ example: 'worker-1' })
  @IsString()
  @Matches(LOCK_CLIENT_ID_PATTERN, { message: `client_id ${CLIENT_ID_RULE}` })
  client_id!: string;

  @ApiProperty({ description: 'The fencing token of the grant', example: 7 })
  @IsInt()
  @Min(1)
  token!: number;
}

export class RenewLockDto extends ReleaseLockDto {
  @ApiPropertyOptional({ description: 'New lease from now; default LOCK_DEFAULT_TTL_MS', minimum: 1 })
  @IsOptional()
  @IsInt()
  @Min(1)
  ttl_ms?: number;
}

/** Over NATS the resource travels in the body. */
export class AcquireLockMessage extends AcquireLockDto {
  @IsString()
  @Matches(LOCK_RESOURCE_PATTERN, { message: `resource ${RESOURCE_RULE}` })
  resource!: string;
}

export class ReleaseLockMessage extends ReleaseLockDto {
  @IsString()
  @Matches(LOCK_RESOURCE_PATTERN, { message: `resource ${RESOURCE_RULE}` })
  resource!: string;
}

export class RenewLockMessage extends RenewLockDto {
  @IsString()
  @Matches(LOCK_RESOURCE_PATTERN, { message: `resource ${RESOURCE_RULE}` })
  resource!: string;
}

export class GetLockMessage {
  @IsString()
  @Matches(LOCK_RESOURCE_PATTERN, { message: `resource ${RESOURCE_RULE}` })
  resource!: string;
}
