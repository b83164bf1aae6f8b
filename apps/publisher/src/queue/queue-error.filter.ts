import { type ArgumentsHost, Catch, type ExceptionFilter } from '@nestjs/common';
import type { ErrorBody } from '@lib/contracts';
import type { FastifyReply, FastifyRequest } from 'fastify';

import { QueueError, type QueueErrorCode } from './queue.errors.js';

/** The product's error body with one of the queue's own codes. */
export type QueueErrorBody = Omit<ErrorBody, 'error'> & { error: QueueErrorCode };

/** Answers a `QueueError` with its status, in the same shape as the global filter's answers. */
@Catch(QueueError)
export class QueueErrorFilter implements ExceptionFilter<QueueError> {
  catch(error: QueueError, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const body: QueueErrorBody = {
      statusCode: error.status,
      error: error.code,
      message: error.message,
      details: error.details,
      correlation_id: String(request.id),
    };
    void http.getResponse<FastifyReply>().status(error.status).send(body);
  }
}
