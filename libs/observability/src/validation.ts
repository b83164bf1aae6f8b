import { applyDecorators, BadRequestException, ValidationPipe, type ValidationError } from '@nestjs/common';
import { ApiPropertyOptional } from '@nestjs/swagger';
import type { FieldError } from '@lib/contracts';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, Max, Min } from 'class-validator';

function flatten(errors: ValidationError[], prefix = ''): FieldError[] {
  return errors.flatMap((error) => {
    const field = prefix ? `${prefix}.${error.property}` : error.property;
    const own = Object.values(error.constraints ?? {}).map((message) => ({ field, message }));
    return [...own, ...flatten(error.children ?? [], field)];
  });
}

/**
 * The global pipe for small request bodies (class-validator DTOs): unknown fields are refused and every
 * problem is listed in `details`, in the same format as the event batch validator.
 */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    exceptionFactory: (errors) => {
      const details = flatten(errors);
      return new BadRequestException({
        message: details.map((d) => `${d.field}: ${d.message}`).join('; '),
        details,
      });
    },
  });
}

/** The largest page any list answers. */
export const MAX_PAGE_SIZE = 1000;

/**
 * The `limit` of a paged list, one rule for every list of the product: a whole number from 1 to
 * `MAX_PAGE_SIZE` read from the query string, 100 when absent.
 */
export function PageLimit(description = 'Page size'): PropertyDecorator {
  return applyDecorators(
    ApiPropertyOptional({ description, default: 100, minimum: 1, maximum: MAX_PAGE_SIZE }),
    IsOptional(),
    Type(() => Number),
    IsInt(),
    Min(1),
    Max(MAX_PAGE_SIZE),
  );
}
