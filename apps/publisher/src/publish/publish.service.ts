import { createHash, randomUUID } from 'node:crypto';

import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG } from '@lib/config';
import {
  findNulEvents,
  type IngestEvent,
  type MessagingNames,
  messagingNames,
  partitionOf,
  UnavailableError,
  ValidationFailedError,
} from '@lib/contracts';
import { NatsClient } from '@lib/messaging';
import { METRICS_REGISTRY } from '@lib/observability';
import { Counter, Histogram, type Registry } from 'prom-client';

import type { PublisherConfig } from '../publisher.env.js';

/** Room left in a message for headers and protocol framing. */
const FRAME_ALLOWANCE = 4 * 1024;

/**
 * Persists a validated batch in JetStream: the events are grouped by partition (a consistent hash of
 * the topic) into as few messages as the server's payload limit allows, each published with a
 * `Nats-Msg-Id` unique to this request so the server drops our own retries. Resolves only when
 * JetStream has acknowledged every message; otherwise throws `UnavailableError` (HTTP 503).
 */
@Injectable()
export class PublishService {
  private readonly logger = new Logger(PublishService.name);
  private readonly names: MessagingNames;
  private readonly published: Counter;
  private readonly refused: Counter;
  private readonly latency: Histogram;

  constructor(
    @Inject(APP_CONFIG) private readonly config: PublisherConfig,
    @Inject(NatsClient) private readonly nats: NatsClient,
    @Inject(METRICS_REGISTRY) registry: Registry,
  ) {
    this.names = messagingNames(config.NATS_NAMESPACE);
    this.published = new Counter({
      name: 'publisher_events_accepted_total',
      help: 'Events persisted in JetStream and answered 202',
      registers: [registry],
    });
    this.refused = new Counter({
      name: 'publisher_requests_unavailable_total',
      help: 'Requests answered 503 because JetStream could not persist them',
      labelNames: ['reason'],
      registers: [registry],
    });
    this.latency = new Histogram({
      name: 'publisher_persist_seconds',
      help: 'Time from a valid request to JetStream acknowledging all of it',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
  }

  /**
   * @param idempotencyKey the client's key for this request: its messages get the same `Nats-Msg-Id`s
   *   on a retry, so JetStream drops what the first attempt already stored.
   */
  async publish(events: IngestEvent[], idempotencyKey?: string): Promise<number> {
    if (!this.nats.isConnected) {
      this.refused.inc({ reason: 'disconnected' });
      throw new UnavailableError('NATS is unreachable; nothing of this request was published', 2);
    }
    const messages = this.encode(events);
    const stopTimer = this.latency.startTimer();
    const requestId = idempotencyKey === undefined ? randomUUID() : keyedRequestId(idempotencyKey, messages);
    const results = await Promise.allSettled(
      messages.map(({ partition, chunk, body }) =>
        this.nats.js.publish(this.names.eventsSubject(partition), body, {
          msgID: `${requestId}:${partition}:${chunk}`,
          timeout: this.config.PUBLISH_TIMEOUT_MS,
        }),
      ),
    );
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) {
      const reason = String(failure.reason);
      const full = /maximum (bytes|messages)|resource limits|storage/i.test(reason);
      this.refused.inc({ reason: full ? 'stream_full' : 'unavailable' });
      this.logger.warn(`request ${requestId} not persisted: ${reason}`);
      throw new UnavailableError(
        full
          ? 'the events stream is full; retry later'
          : `JetStream did not confirm every event of the request (some may be stored; retry with an Idempotency-Key to avoid counting them twice): ${reason}`,
        full ? 5 : 2,
      );
    }
    stopTimer();
    this.published.inc(events.length);
    return events.length;
  }

  /**
   * Groups events by partition, in request order, and serialises each group once; a group over the
   * server's payload limit is halved until every part fits.
   */
  private encode(events: IngestEvent[]): { partition: number; chunk: number; body: string }[] {
    const limit = this.nats.maxPayload - FRAME_ALLOWANCE;
    const groups = new Map<number, number[]>();
    events.forEach((event, index) => {
      const partition = partitionOf(event.topic, this.config.PARTITIONS);
      let group = groups.get(partition);
      if (!group) groups.set(partition, (group = []));
      group.push(index);
    });
    const messages: { partition: number; chunk: number; body: string }[] = [];
    const add = (partition: number, indexes: number[]): void => {
      const body = JSON.stringify(indexes.map((i) => events[i]));
      if (body.includes('\\u0000'))
        rejectNul(
          indexes.map((i) => events[i]),
          indexes,
        );
      if (Buffer.byteLength(body) <= limit) {
        messages.push({ partition, chunk: messages.length, body });
      } else if (indexes.length === 1) {
        const index = indexes[0];
        throw new ValidationFailedError(
          `event ${index} is larger than the ${limit} bytes one event may take`,
          [{ index, field: 'payload', message: `the event must encode to at most ${limit} bytes` }],
        );
      } else {
        const half = Math.ceil(indexes.length / 2);
        add(partition, indexes.slice(0, half));
        add(partition, indexes.slice(half));
      }
    };
    for (const [partition, indexes] of groups) add(partition, indexes);
    return messages;
  }
}

/**
 * The request id under a client's idempotency key: the key and a digest of the whole request, so a
 * retry of the same request gets the same `Nats-Msg-Id`s (JetStream drops what the first attempt
 * stored), while the key reused for any other content is another request, never silently discarded.
 */
function keyedRequestId(key: string, messages: { body: string }[]): string {
  const digest = createHash('sha256');
  for (const { body } of messages) digest.update(body).update('\n');
  return `${key}:${digest.digest('base64url').slice(0, 22)}`;
}

/** Refuses the events that hold U+0000 (PostgreSQL cannot store it), naming each by its index. */
function rejectNul(events: IngestEvent[], indexes: number[]): void {
  const details = findNulEvents(events).map(({ position, field }) => ({
    index: indexes[position],
    field,
    message: 'must not contain the character U+0000',
  }));
  if (details.length > 0) {
    throw new ValidationFailedError(`${details.length} event(s) contain the character U+0000`, details);
  }
}
