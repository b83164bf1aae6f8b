import {
  type ArgumentsHost,
  Catch,
  type ExceptionFilter,
  HttpException,
  HttpStatus,
  Logger,
} from '@nestjs/common';
import { DomainError, ErrorCode, type ErrorBody, type FieldError, UnavailableError } from '@lib/contracts';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** The status of each shared code, for domain errors that do not set their own. */
const STATUS_BY_CODE: Record<ErrorCode, number> = {
  [ErrorCode.ValidationFailed]: HttpStatus.BAD_REQUEST,
  [ErrorCode.PayloadTooLarge]: HttpStatus.PAYLOAD_TOO_LARGE,
  [ErrorCode.NotFound]: HttpStatus.NOT_FOUND,
  [ErrorCode.Unauthorized]: HttpStatus.UNAUTHORIZED,
  [ErrorCode.Unavailable]: HttpStatus.SERVICE_UNAVAILABLE,
  [ErrorCode.Internal]: HttpStatus.INTERNAL_SERVER_ERROR,
};

function codeForStatus(status: number): ErrorCode {
  if (status === 413) return ErrorCode.PayloadTooLarge;
  if (status === 404) return ErrorCode.NotFound;
  if (status === 401) return ErrorCode.Unauthorized;
  if (status === 503) return ErrorCode.Unavailable;
  if (status >= 400 && status < 500) return ErrorCode.ValidationFailed;
  return ErrorCode.Internal;
}

/** Turns any error into the product's error body: domain errors by code, HTTP and framework errors by status. */
export function toErrorBody(
  error: unknown,
  correlationId?: string,
): { body: ErrorBody; retryAfter?: number } {
  if (error instanceof DomainError) {
    const body: ErrorBody = {
      ...error.extra,
      statusCode: error.status ?? STATUS_BY_CODE[error.code as ErrorCode] ?? HttpStatus.INTERNAL_SERVER_ERROR,
      error: error.code,
      message: error.message,
      details: error.details,
      correlation_id: correlationId,
    };
    return { body, retryAfter: error instanceof UnavailableError ? error.retryAfterSeconds : undefined };
  }
  if (error instanceof HttpException) {
    const status = error.getStatus();
    const response = error.getResponse();
    const message =
      typeof response === 'object' && response !== null && 'message' in response
        ? response.message
        : error.message;
    const details = (response as { details?: FieldError[] }).details;
    return {
      body: {
        statusCode: status,
        error: codeForStatus(status),
        message: Array.isArray(message) ? message.join('; ') : String(message),
        details,
        correlation_id: correlationId,
      },
    };
  }
  const status = (error as { statusCode?: number }).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    // fastify's own errors: body not JSON, body too large, unsupported media type
    return {
      body: {
        statusCode: status,
        error: codeForStatus(status),
        message: (error as Error).message,
        correlation_id: correlationId,
      },
    };
  }
  return {
    body: {
      statusCode: 500,
      error: ErrorCode.Internal,
      message: 'internal error',
      correlation_id: correlationId,
    },
  };
}

/** The report of a failed terminus health check, which is answered as it is. */
function healthReportOf(error: unknown): object | undefined {
  if (!(error instanceof HttpException) || error.getStatus() !== 503) return undefined;
  const response = error.getResponse();
  const isReport =
    typeof response === 'object' &&
    response !== null &&
    (response as { status?: unknown }).status === 'error' &&
    'details' in response;
  return isReport ? response : undefined;
}

/** The one HTTP exception filter: maps every error to `ErrorBody` with the request's correlation id. */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger(HttpErrorFilter.name);

  catch(error: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const { body, retryAfter } = toErrorBody(error, String(request.id));
    if (body.statusCode >= 500 && !(error instanceof DomainError)) {
      this.logger.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    }
    if (retryAfter !== undefined) void reply.header('Retry-After', String(retryAfter));
    const health = healthReportOf(error);
    if (health) {
      // /health keeps terminus's format when it fails: that is what probes and operators read
      void reply.status(503).send(health);
      return;
    }
    void reply.status(body.statusCode).send(body);
  }
}
