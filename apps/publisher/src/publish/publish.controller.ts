import { Body, Controller, Headers, HttpCode, HttpStatus, Inject, Post } from '@nestjs/common';
import { ApiBody, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { APP_CONFIG } from '@lib/config';
import { INGEST_EVENT_SCHEMA, ValidationFailedError } from '@lib/contracts';

import type { PublisherConfig } from '../publisher.env.js';
import { EventBatchValidator } from './event-batch.validator.js';
import { PublishService } from './publish.service.js';

const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:-]{1,128}$/;

@ApiTags('publish')
@Controller('publish')
export class PublishController {
  constructor(
    @Inject(APP_CONFIG) private readonly config: PublisherConfig,
    @Inject(EventBatchValidator) private readonly validator: EventBatchValidator,
    @Inject(PublishService) private readonly publisher: PublishService,
  ) {}

  @Post()
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({
    summary:
      'Publish one event, {"events": [...]} or a bare array; answered after JetStream persisted all of it',
  })
  @ApiBody({
    schema: { oneOf: [INGEST_EVENT_SCHEMA, { type: 'array', items: INGEST_EVENT_SCHEMA }] } as never,
  })
  @ApiResponse({ status: 202, description: '{"accepted": N, "status": "queued"}' })
  @ApiResponse({
    status: 400,
    description: 'Invalid batch: every bad field with its event index; nothing published',
  })
  @ApiResponse({ status: 413, description: 'Body over BODY_LIMIT_BYTES' })
  @ApiResponse({
    status: 503,
    description: 'NATS down or stream full; see Retry-After; nothing acknowledged',
  })
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description:
      'Retrying a request with the same key (within DUPLICATE_WINDOW_MS) does not publish its events twice, ' +
      'even when the first attempt was answered 503 after being partly persisted',
  })
  async publish(
    @Body() body: unknown,
    @Headers('idempotency-key') idempotencyKey?: string,
  ): Promise<{ accepted: number; status: 'queued' }> {
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw new ValidationFailedError('Idempotency-Key must be 1-128 characters of [A-Za-z0-9._:-]', [
        { field: 'Idempotency-Key', message: 'must be 1-128 characters of [A-Za-z0-9._:-]' },
      ]);
    }
    const events = this.validator.validate(body, this.config.PUBLISH_BATCH_LIMIT);
    return { accepted: await this.publisher.publish(events, idempotencyKey), status: 'queued' };
  }
}
