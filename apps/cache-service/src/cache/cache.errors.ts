import { DomainError, ErrorCode } from '@lib/contracts';

/** A value whose JSON text is over `CACHE_MAX_VALUE_BYTES` (413). */
export class ValueTooLargeError extends DomainError {
  readonly code = ErrorCode.PayloadTooLarge;
}
