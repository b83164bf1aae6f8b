import {
  Body,
  Controller,
  Get,
  Headers,
  HttpCode,
  HttpStatus,
  Inject,
  Param,
  Post,
  Res,
} from '@nestjs/common';
import { ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import {
  type QueueCounts,
  type QueueDelivery,
  type QueuePushResult,
  ValidationFailedError,
} from '@lib/contracts';
import type { FastifyReply } from 'fastify';

import {
  NackBody,
  PopBody,
  PushMessageBody,
  SeedPopParams,
  SeedPushBody,
  SettleBody,
  TopicParams,
} from './dto/queue.dto.js';
import { QueueService } from './queue.service.js';

const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:-]{1,128}$/;

function idempotencyKeyOf(header: string | undefined): string | undefined {
  if (header !== undefined && !IDEMPOTENCY_KEY.test(header)) {
    throw new ValidationFailedError('Idempotency-Key must be 1-128 characters of [A-Za-z0-9._:-]', [
      { field: 'Idempotency-Key', message: 'must be 1-128 characters of [A-Za-z0-9._:-]' },
    ]);
  }
  return header;
}

/** 200 with the delivery, or 204 with no body when the topic has nothing to pop. */
function answerPop(reply: FastifyReply, delivery: QueueDelivery | undefined): QueueDelivery | undefined {
  if (!delivery) void reply.status(HttpStatus.NO_CONTENT);
  return delivery;
}

const SETTLE_REFUSALS = [
  { status: 400, description: 'message_id malformed, or a bad consumer_id' },
  { status: 404, description: 'No such message in this topic' },
  {
    status: 409,
    description:
      'NOT_LEASE_HOLDER: never popped, popped by another consumer, delivered again since (lease expired), or nacked',
  },
  { status: 410, description: 'ALREADY_ACKED: no longer in the queue (acked or dead-lettered)' },
  { status: 503, description: 'NATS unreachable; retry (repeating an ack or nack is safe)' },
] as const;

@ApiTags('queue')
@Controller('queue')
export class QueueController {
  constructor(@Inject(QueueService) private readonly queue: QueueService) {}

  @Post(':topic/messages')
  @HttpCode(HttpStatus.CREATED)
  @ApiOperation({ summary: 'Push a message; answered once JetStream stored it' })
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description:
      'A retry with the same key within DUPLICATE_WINDOW_MS answers the first push, storing nothing',
  })
  @ApiResponse({ status: 201, description: '{message_id, sequence}' })
  @ApiResponse({ status: 413, description: 'Message over QUEUE_MESSAGE_MAX_BYTES' })
  @ApiResponse({ status: 503, description: 'NATS unreachable or the queue stream full' })
  push(
    @Param() { topic }: TopicParams,
    @Body() body: PushMessageBody,
    @Headers('idempotency-key') idempotencyKey?: string,
  ): Promise<QueuePushResult> {
    return this.queue.push(topic, body.message, body.headers, idempotencyKeyOf(idempotencyKey));
  }

  @Post(':topic/pop')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    summary: 'Pop one message, invisible to other consumers until acked or its visibility ends',
  })
  @ApiResponse({ status: 200, description: 'The message with its message_id and delivery_count' })
  @ApiResponse({ status: 204, description: 'Nothing to pop' })
  async pop(
    @Param() { topic }: TopicParams,
    @Body() body: PopBody,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<QueueDelivery | undefined> {
    const delivery = await this.queue.pop(topic, body.consumer_id, {
      visibilityMs: body.visibility_ms,
      waitMs: body.wait_ms,
    });
    return answerPop(reply, delivery);
  }

  @Post(':topic/ack')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'Ack a popped message: it never comes back. Works on any replica' })
  @ApiResponse({ status: 200, description: '{status: "acked", message_id, sequence}' })
  @ApiResponse(SETTLE_REFUSALS[0])
  @ApiResponse(SETTLE_REFUSALS[1])
  @ApiResponse(SETTLE_REFUSALS[2])
  @ApiResponse(SETTLE_REFUSALS[3])
  @ApiResponse(SETTLE_REFUSALS[4])
  ack(
    @Param() { topic }: TopicParams,
    @Body() body: SettleBody,
  ): Promise<{ status: 'acked'; message_id: string; sequence: number }> {
    return this.queue.ack(topic, body.consumer_id, body.message_id);
  }

  @Post(':topic/nack')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'Hand a popped message back, visible again after delay_ms' })
  @ApiResponse({ status: 200, description: '{status: "nacked", message_id, sequence, redelivery_in_ms}' })
  @ApiResponse(SETTLE_REFUSALS[2])
  @ApiResponse(SETTLE_REFUSALS[3])
  nack(
    @Param() { topic }: TopicParams,
    @Body() body: NackBody,
  ): Promise<{ status: 'nacked'; message_id: string; sequence: number; redelivery_in_ms: number }> {
    return this.queue.nack(topic, body.consumer_id, body.message_id, body.delay_ms);
  }

  @Get(':topic')
  @ApiOperation({ summary: 'Counts of a topic: depth, waiting, in flight, redelivered, dead-lettered' })
  counts(@Param() { topic }: TopicParams): Promise<QueueCounts> {
    return this.queue.counts(topic);
  }
}

/** The seed's queue routes, kept for its clients: thin aliases of `QueueController`'s. */
@ApiTags('queue (seed routes)')
@Controller('queue')
export class SeedQueueController {
  constructor(@Inject(QueueService) private readonly queue: QueueService) {}

  @Post('push')
  @HttpCode(HttpStatus.CREATED)
  @ApiOperation({ summary: 'Alias of POST /queue/:topic/messages taking {topic, message}' })
  push(@Body() body: SeedPushBody): Promise<QueuePushResult> {
    return this.queue.push(body.topic, body.message, body.headers);
  }

  @Get('pop/:topic/:consumer')
  @ApiOperation({ summary: 'Alias of POST /queue/:topic/pop with the default visibility' })
  @ApiResponse({ status: 204, description: 'Nothing to pop' })
  async pop(
    @Param() { topic, consumer }: SeedPopParams,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<QueueDelivery | undefined> {
    return answerPop(reply, await this.queue.pop(topic, consumer));
  }

  @Post('ack/:topic')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'Alias of POST /queue/:topic/ack' })
  ack(
    @Param() { topic }: TopicParams,
    @Body() body: SettleBody,
  ): Promise<{ status: 'acked'; message_id: string; sequence: number }> {
    return this.queue.ack(topic, body.consumer_id, body.message_id);
  }
}
