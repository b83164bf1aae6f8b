import { Body, Controller, HttpCode, HttpStatus, Inject, Post } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { APP_CONFIG } from '@lib/config';
import { INGEST_EVENT_SCHEMA } from '@lib/contracts';

import type { PublisherConfig } from '../publisher.env.js';
import { EventBatchValidator } from './event-batch.validator.js';
import { PublishService } from './publish.service.js';

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
  async publish(@Body() body: unknown): Promise<{ accepted: number; status: 'queued' }> {
    const events = this.validator.validate(body, this.config.PUBLISH_BATCH_LIMIT);
    return { accepted: await this.publisher.publish(events), status: 'queued' };
  }
}
