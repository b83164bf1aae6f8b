import { ApiPropertyOptional } from '@nestjs/swagger';
import { PageLimit } from '@lib/observability';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, Min } from 'class-validator';

export class ListDeadLettersQuery {
  @ApiPropertyOptional({ description: 'List dead letters after this sequence', default: 0 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  after?: number;

  @PageLimit()
  limit?: number;
}
