import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsOptional, Max, Min, ValidateBy } from 'class-validator';

/** A year: longer lifetimes are a configuration mistake rather than a cache entry. */
export const MAX_TTL_MS = 365 * 24 * 3600 * 1000;

/** `value` may be any JSON value, `null` included; only a missing one is refused. */
export function IsPresent(): PropertyDecorator {
  return ValidateBy({
    name: 'isPresent',
    validator: {
      validate: (value: unknown) => value !== undefined,
      defaultMessage: () => 'value is required (any JSON value, null included)',
    },
  });
}

export class PutEntryBody {
  @ApiProperty({
    description: 'Any JSON value (object, array, string, number, boolean or null)',
    example: { name: 'Ada' },
  })
  @IsPresent()
  value!: unknown;

  @ApiPropertyOptional({
    description: 'Time to live in ms (default CACHE_DEFAULT_TTL_MS; 0 there means forever)',
    minimum: 1,
    maximum: MAX_TTL_MS,
  })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(MAX_TTL_MS)
  ttl_ms?: number;
}
