import { Logger } from '@nestjs/common';
import { AckPolicy, DeliverPolicy, type JsMsg } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { Headers, type MessagingNames } from '@lib/contracts';
import { ConsumeLoop, type Failure, isConsumerNotFound, type NatsClient } from '@lib/messaging';
import { type EventStoreRepository, isTransientDatabaseError, WatermarkMovedError } from '@lib/persistence';

import type { AggregatorConfig } from '../aggregator.env.js';
import { decodeEventsMessage } from './event-decoder.js';
import { UndecodableMessageError } from './ingest.errors.js';
import type { IngestMetrics } from './ingest.metrics.js';

/**
 * Consumes one partition of the events stream into the event store, exactly once in effect.
 *
 * The position of record is the partition's watermark in Postgres (the last stream sequence applied),
 * committed in the same transaction as the rows and counters. The JetStream consumer is only a cursor:
 * on start, and whenever its deliveries are not contiguous, it is rebuilt to deliver from the oldest
 * message not yet acked (the stream has work-queue retention), which is never past watermark+1.
 * Messages are applied strictly in order and a failing batch is retried in place (never nak'ed), so no
 * message can overtake another; one at or below the watermark is a redelivery and only acked.
 */
export class PartitionIngestor {
  private readonly logger: Logger;
  private readonly loop: ConsumeLoop;
  private watermark = 0;

  constructor(
    readonly partition: number,
    private readonly names: MessagingNames,
    private readonly config: AggregatorConfig,
    private readonly nats: NatsClient,
    private readonly store: EventStoreRepository,
    private readonly metrics: IngestMetrics,
  ) {
    this.logger = new Logger(`Partition${partition}`);
    this.loop = new ConsumeLoop({
      name: `p${partition}`,
      consumer: () => this.nats.js.consumers.get(this.names.eventsStream, this.consumerName),
      maxInFlight: config.CONSUMER_MAX_IN_FLIGHT,
      maxBatch: config.BATCH_MAX_MESSAGES,
      ackWaitMs: config.ACK_WAIT_MS,
      ordering: 'strict',
      backoff: { minMs: config.RETRY_MIN_MS, maxMs: config.RETRY_MAX_MS },
      maxAttempts: config.MAX_DELIVER,
      handle: (batch) => this.apply(batch),
      classify: (error) => this.classify(error),
      deadLetter: (message, error, attempts) => this.deadLetter(message, error, attempts),
      reposition: () => this.reposition(),
      observe: (outcome) => metrics.observeBatch(outcome),
    });
  }

  private get consumerName(): string {
    return this.names.eventsConsumer(this.partition);
  }

  start(): void {
    this.loop.start();
  }

  /** Finishes the batch in hand (committed and acked), then stops; the rest stays in the stream. */
  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** Applies the messages above the watermark, in one transaction, and moves the watermark to the last. */
  private async apply(batch: JsMsg[]): Promise<void> {
    const from = this.watermark;
    let last = from;
    const parts: string[] = [];
    for (const message of batch) {
      const sequence = message.info.streamSequence;
      if (sequence <= last) continue; // a redelivery of what is committed or already in this batch
      const inner = decodeEventsMessage(message.data, sequence);
      if (inner.length > 0) parts.push(inner);
      last = sequence;
    }
    if (last === from) return;
    const started = performance.now();
    const stored = await this.store.storeBatch({
      stream: this.names.eventsStream,
      partition: this.partition,
      expectedWatermark: from,
      watermark: last,
      eventsJson: `[${parts.join(',')}]`,
      deadLettered: 0,
    });
    this.watermark = last;
    this.metrics.observeStored(this.partition, stored, last, (performance.now() - started) / 1000);
  }

  private classify(error: unknown): Failure {
    if (error instanceof UndecodableMessageError) return 'poison';
    if (error instanceof WatermarkMovedError) return 'reposition';
    return isTransientDatabaseError(error) ? 'transient' : 'poison';
  }

  /** Publishes the message to the dead-letter stream (idempotently), then moves the watermark past it. */
  private async deadLetter(message: JsMsg, error: unknown, attempts: number): Promise<void> {
    const sequence = message.info.streamSequence;
    if (sequence <= this.watermark) return;
    const h = natsHeaders();
    h.set(Headers.OriginalSubject, message.subject);
    h.set(Headers.OriginalSequence, String(sequence));
    h.set(Headers.Reason, String(error instanceof Error ? error.message : error).slice(0, 1_000));
    h.set(Headers.Attempts, String(attempts));
    await this.nats.js.publish(this.names.deadLetterSubject, message.data, {
      msgID: `dlq:${this.names.eventsStream}:${sequence}`,
      headers: h,
    });
    await this.store.storeBatch({
      stream: this.names.eventsStream,
      partition: this.partition,
      expectedWatermark: this.watermark,
      watermark: sequence,
      eventsJson: '[]',
      deadLettered: 1,
    });
    this.watermark = sequence;
    this.logger.warn(`message ${sequence} dead-lettered after ${attempts} attempt(s): ${String(error)}`);
  }

  /** Reads the watermark of record and rebuilds the consumer to deliver from the message after it. */
  private async reposition(): Promise<void> {
    this.watermark = await this.store.claimPartition(this.names.eventsStream, this.partition);
    try {
      await this.nats.jsm.consumers.delete(this.names.eventsStream, this.consumerName);
    } catch (error) {
      if (!isConsumerNotFound(error)) throw error;
    }
    await this.nats.jsm.consumers.add(this.names.eventsStream, {
      durable_name: this.consumerName,
      filter_subject: this.names.eventsSubject(this.partition),
      ack_policy: AckPolicy.Explicit,
      // a work-queue stream holds only unacked messages, so "all" starts at the oldest not yet acked:
      // at or below watermark+1 (committed but unacked ones are skipped by `apply`)
      deliver_policy: DeliverPolicy.All,
      ack_wait: this.config.ACK_WAIT_MS * 1_000_000,
      // never let the server give up on a message: a skipped message would be a lost one
      max_deliver: -1,
      max_ack_pending: this.config.CONSUMER_MAX_IN_FLIGHT * 2,
    });
    this.logger.log(`consuming after committed stream sequence ${this.watermark}`);
  }
}
