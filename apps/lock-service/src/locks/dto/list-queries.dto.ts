import { ApiPropertyOptional } from '@nestjs/swagger';
import { PageLimit } from '@lib/observability';
import { LOCK_CLIENT_ID_PATTERN, LOCK_RESOURCE_PATTERN } from '@lib/contracts';
import { IsIn, IsOptional, IsString, Matches } from 'class-validator';

export class ListLocksQuery {
  @PageLimit()
  limit?: number;

  @ApiPropertyOptional({ description: 'next_cursor of the previous page' })
  @IsOptional()
  @IsString()
  @Matches(LOCK_RESOURCE_PATTERN, { message: 'cursor must be a next_cursor of a previous page' })
  cursor?: string;
}

export class ListAuditQuery {
  @ApiPropertyOptional({ description: 'Only entries of this resource' })
  @IsOptional()
  @IsString()
  @Matches(LOCK_RESOURCE_PATTERN, { message: 'resource must be 1-100 characters of [A-Za-z0-9._:-]' })
  resource?: string;

  @ApiPropertyOptional({ description: 'Only entries of this client' })
  @IsOptional()
  @IsString()
  @Matches(LOCK_CLIENT_ID_PATTERN, { message: 'client_id must be 1-128 characters of [A-Za-z0-9._:@-]' })
  client_id?: string;

  @PageLimit()
  limit?: number;

  @ApiPropertyOptional({ description: 'next_cursor of the previous page' })
  @IsOptional()
  @IsString()
  @Matches(/^\d{1,18}$/, { message: 'cursor must be a next_cursor of a previous page' })
  cursor?: string;

  @ApiPropertyOptional({
    enum: ['asc', 'desc'],
    default: 'asc',
    description: 'Oldest first (asc) or newest first',
  })
  @IsOptional()
  @IsIn(['asc', 'desc'])
  order?: 'asc' | 'desc';
}
