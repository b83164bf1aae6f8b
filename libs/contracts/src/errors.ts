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

/**
 * The body of every 4xx/5xx answer. `error` is one of the shared `ErrorCode`s or a service's own code
 * (e.g. `LOCK_CONFLICT`); a service's error may add fields of its own (e.g. the holders of a lock).
 */
export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
  details?: FieldError[];
  correlation_id?: string;
  [field: string]: unknown;
}

/**
 * Base of every domain error: services throw these, never transport exceptions, and one filter per
 * transport maps them: HTTP answers `status` (by default the status of the shared `code`) with the
 * `ErrorBody`; a message handler decides ack / nak / term from the class.
 */
export abstract class DomainError extends Error {
  /** A shared `ErrorCode`, or a service's own stable code. */
  abstract readonly code: string;
  /** The HTTP status; a service's own code must set it, a shared code has a default. */
  readonly status?: number;
  /** Fields added to the error body beside the standard ones. */
  readonly extra?: Record<string, unknown>;

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
