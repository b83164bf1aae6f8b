/** Stable error codes shared by every service's HTTP and message boundaries. */
export const ErrorCode = {
  ValidationFailed: 'VALIDATION_FAILED',
  PayloadTooLarge: 'PAYLOAD_TOO_LARGE',
  NotFound: 'NOT_FOUND',
  Unauthorized: 'UNAUTHORIZED',
  Unavailable: 'UNAVAILABLE',
  Internal: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** One problem with one field of the input; `index` names the event of a batch. */
export interface FieldError {
  index?: number;
  field: string;
  message: string;
}

/** The body of every 4xx/5xx answer. */
export interface ErrorBody {
  statusCode: number;
  error: ErrorCode;
  message: string;
  details?: FieldError[];
  correlation_id?: string;
}

/**
 * Base of every domain error: services throw these, and one filter per transport maps `code` to a
 * status (HTTP) or a disposition (messages).
 */
export abstract class DomainError extends Error {
  abstract readonly code: ErrorCode;
  constructor(
    message: string,
    readonly details?: FieldError[],
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class ValidationFailedError extends DomainError {
  readonly code = ErrorCode.ValidationFailed;
}

export class NotFoundError extends DomainError {
  readonly code = ErrorCode.NotFound;
}

/** A dependency (NATS, Postgres) cannot take the work now; the client should retry after `retryAfterSeconds`. */
export class UnavailableError extends DomainError {
  readonly code = ErrorCode.Unavailable;
  constructor(
    message: string,
    readonly retryAfterSeconds = 1,
  ) {
    super(message);
  }
}

/** A write without the API key the deployment requires (see `API_KEY`). */
export class UnauthorizedError extends DomainError {
  readonly code = ErrorCode.Unauthorized;
}
