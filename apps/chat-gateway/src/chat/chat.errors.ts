import { type ChatAck, ChatErrorCode, DomainError, ErrorCode, type FieldError } from '@lib/contracts';

/**
 * A refused chat request. `reason` is what a socket client sees in its acknowledgement; `code` maps it
 * to HTTP for the REST routes like every other domain error.
 */
export class ChatRequestError extends DomainError {
  readonly code: ErrorCode;

  constructor(
    readonly reason: ChatErrorCode,
    message: string,
    readonly field?: string,
    details?: FieldError[],
  ) {
    super(message, details ?? (field ? [{ field, message }] : undefined));
    this.code =
      reason === ChatErrorCode.UnknownNode || reason === ChatErrorCode.UnknownMessage
        ? ErrorCode.NotFound
        : reason === ChatErrorCode.Unavailable
          ? ErrorCode.Unavailable
          : ErrorCode.ValidationFailed;
  }
}

export class InvalidConfigError extends ChatRequestError {
  constructor(problems: FieldError[]) {
    super(
      ChatErrorCode.InvalidConfig,
      problems.map((p) => `${p.field} ${p.message}`).join('; '),
      problems[0]?.field,
      problems,
    );
  }
}

/** The acknowledgement of a refused request, whatever was thrown. */
export function refusal(error: unknown): ChatAck {
  if (error instanceof ChatRequestError) {
    return {
      ok: false,
      error: {
        code: error.reason,
        message: error.message,
        ...(error.field === undefined ? {} : { field: error.field }),
      },
    };
  }
  return {
    ok: false,
    error: {
      code: ChatErrorCode.Unavailable,
      message: error instanceof Error ? error.message : String(error),
    },
  };
}
