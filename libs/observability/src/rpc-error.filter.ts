import { Catch, Logger, type RpcExceptionFilter } from '@nestjs/common';
import type { ErrorBody } from '@lib/contracts';
import { type Observable, throwError } from 'rxjs';

import { toErrorBody } from './http-error.filter.js';

/**
 * NATS request/reply (`@nestjs/microservices`): the reply to a failed request is the very body the HTTP
 * answer would carry (`statusCode`, `error`, `message`, the error's own fields), so a client of either
 * transport handles errors the same way.
 */
@Catch()
export class RpcErrorFilter implements RpcExceptionFilter<unknown> {
  private readonly logger = new Logger(RpcErrorFilter.name);

  catch(error: unknown): Observable<never> {
    const { body } = toErrorBody(error);
    if (body.statusCode >= 500)
      this.logger.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    return throwError((): ErrorBody => body);
  }
}
