import { Inject, Injectable, Logger } from '@nestjs/common';
import { AckPolicy, type ConsumerConfig, DeliverPolicy } from '@nats-io/jetstream';
import { headers as natsHeaders, type Msg, RequestError } from '@nats-io/transport-node';
import { APP_CONFIG } from '@lib/config';
import { QueueHeaders, type QueueNames, queueNames, UnavailableError } from '@lib/contracts';
import { isConsumerNotFound, NatsClient } from '@lib/messaging';
import { LRUCache } from 'lru-cache';

import type { PublisherConfig } from '../publisher.env.js';

/** One delivery of a queue message, as the pull request answered it. */
export interface Delivery {
  sequence: number;
  /** The server's delivery count: 1 on the first delivery. */
  delivery: number;
  /** The consumer's delivery sequence, a token of the ack subject. */
  consumerSequence: number;
  /** The ack subject of this delivery: whoever publishes to it acks or naks the message. */
  reply: string;
  data: Uint8Array;
  pushedAtMs: number;
}

/** Where a stream sequence stands, for telling an unknown message id from one already acked. */
export type Whereabouts = 'in_topic' | 'other_topic' | 'gone' | 'unknown';

/** How a settle request tells the server what to do with a delivery. */
export type Settlement = { verb: 'ack' } | { verb: 'nak'; delayMs: number };

const MS = 1_000_000;
/** Extra time a long-polling pull request is given beyond its own expiry before it counts as lost. */
const PULL_MARGIN_MS = 2_000;
/** Topics whose consumer this process has declared, most recently used first. */
const DECLARED_CONSUMERS = 10_000;

/**
 * The work queue's JetStream side: the queue stream, one durable pull consumer per topic, the
 * dead-letter stream. Every call that needs the server refuses with `UnavailableError` (503) when it
 * is unreachable, so the HTTP layer never waits on a dead connection.
 */
@Injectable()
export class QueueStream {
  private readonly logger = new Logger(QueueStream.name);
  readonly names: QueueNames;
  /** Per topic: the consumer's `ack_wait` in ms, once declared. */
  private readonly consumers = new LRUCache<string, Promise<number>>({ max: DECLARED_CONSUMERS });

  constructor(
    @Inject(APP_CONFIG) private readonly config: PublisherConfig,
    @Inject(NatsClient) private readonly nats: NatsClient,
  ) {
    this.names = queueNames(config.NATS_NAMESPACE);
  }

  /** Stores a message; a repeated `msgID` within the duplicate window answers the first sequence. */
  push(topic: string, body: string, msgID?: string): Promise<{ sequence: number; duplicate: boolean }> {
    return this.guard('push', async () => {
      try {
        const ack = await this.nats.js.publish(this.names.subject(topic), body, {
          msgID,
          timeout: this.config.PUBLISH_TIMEOUT_MS,
        });
        return { sequence: ack.seq, duplicate: ack.duplicate };
      } catch (error) {
        if (/maximum (bytes|messages)|resource limits|storage/i.test(String(error))) {
          throw new UnavailableError('the queue stream is full; retry later', 5);
        }
        throw error;
      }
    });
  }

  /** Largest body a push may carry: the server's payload limit less room for headers and framing. */
  get maxBodyBytes(): number {
    return this.nats.maxPayload - 4 * 1024;
  }

  /**
   * Pulls the next deliverable message of the topic: at once (`waitMs` 0) or waiting up to `waitMs`.
   * Undefined when there is none, or when the topic's in-flight limit is reached.
   */
  pull(topic: string, waitMs: number): Promise<Delivery | undefined> {
    return this.guard('pop', async () => {
      await this.ackWaitMs(topic);
      try {
        return await this.requestNext(topic, waitMs);
      } catch (error) {
        // the consumer vanished (stream recreated by an operator): declare it again, once
        if (!(error instanceof RequestError && error.isNoResponders())) throw error;
        this.consumers.delete(topic);
        await this.ackWaitMs(topic);
        return this.requestNext(topic, waitMs);
      }
    });
  }

  /** The `ack_wait` of the topic's consumer in ms (how long a delivery stays invisible without a nak). */
  ackWaitMs(topic: string): Promise<number> {
    let declared = this.consumers.get(topic);
    if (!declared) {
      declared = this.declareConsumer(topic);
      this.consumers.set(topic, declared);
      declared.catch(() => this.consumers.delete(topic));
    }
    return declared;
  }

  /**
   * Acks or naks a delivery through its ack subject and waits for the server to confirm it: this works
   * from any replica, and on an old delivery's subject too (the server acts on the stream sequence).
   */
  settle(reply: string, settlement: Settlement): Promise<void> {
    const payload =
      settlement.verb === 'ack'
        ? '+ACK'
        : settlement.delayMs > 0
          ? `-NAK ${JSON.stringify({ delay: settlement.delayMs * MS })}`
          : '-NAK';
    return this.guard(settlement.verb, async () => {
      await this.nats.connection.request(reply, payload, { timeout: this.config.PUBLISH_TIMEOUT_MS });
    });
  }

  /**
   * The ack subject of a delivery, rebuilt from its sequences: the server acts on the stream sequence
   * (and finds the rest in its pending record), so the timestamp and pending tokens may be 0.
   */
  ackSubject(topic: string, sequence: number, delivery: number, consumerSequence: number): string {
    return `$JS.ACK.${this.names.stream}.${this.names.consumer(topic)}.${delivery}.${sequence}.${consumerSequence}.0.0`;
  }

  /** Files a delivery in the dead-letter stream, once per sequence even when two replicas race. */
  deadLetter(topic: string, delivery: Delivery): Promise<void> {
    return this.guard('dead-letter', async () => {
      const headers = natsHeaders();
      headers.set(QueueHeaders.Topic, topic);
      headers.set(QueueHeaders.Sequence, String(delivery.sequence));
      headers.set(QueueHeaders.Deliveries, String(delivery.delivery - 1));
      await this.nats.js.publish(this.names.deadLetterSubject(topic), delivery.data, {
        msgID: `${this.names.stream}:${delivery.sequence}`,
        headers,
        timeout: this.config.PUBLISH_TIMEOUT_MS,
      });
    });
  }

  /** Whether the message at `sequence` is still stored, and under this topic. */
  locate(topic: string, sequence: number): Promise<Whereabouts> {
    return this.guard('lookup', async () => {
      const stored = await this.nats.jsm.streams.getMessage(this.names.stream, { seq: sequence });
      if (stored) return stored.subject === this.names.subject(topic) ? 'in_topic' : 'other_topic';
      const info = await this.nats.jsm.streams.info(this.names.stream);
      return sequence > info.state.last_seq ? 'unknown' : 'gone';
    });
  }

  /** Stored, waiting, in-flight, redelivered and dead-lettered counts of one topic. */
  counts(topic: string): Promise<{
    depth: number;
    waiting: number;
    inFlight: number;
    redelivered: number;
    deadLettered: number;
  }> {
    return this.guard('counts', async () => {
      const subject = this.names.subject(topic);
      const deadLetterSubject = this.names.deadLetterSubject(topic);
      const [stream, deadLetters, consumer] = await Promise.all([
        this.nats.jsm.streams.info(this.names.stream, { subjects_filter: subject }),
        this.nats.jsm.streams.info(this.names.deadLetterStream, { subjects_filter: deadLetterSubject }),
        this.nats.jsm.consumers
          .info(this.names.stream, this.names.consumer(topic))
          .catch((error: unknown) => {
            if (isConsumerNotFound(error)) return undefined;
            throw error;
          }),
      ]);
      const depth = stream.state.subjects?.[subject] ?? 0;
      return {
        depth,
        waiting: consumer?.num_pending ?? depth,
        inFlight: consumer?.num_ack_pending ?? 0,
        redelivered: consumer?.num_redelivered ?? 0,
        deadLettered: deadLetters.state.subjects?.[deadLetterSubject] ?? 0,
      };
    });
  }

  private async requestNext(topic: string, waitMs: number): Promise<Delivery | undefined> {
    const request = waitMs > 0 ? { batch: 1, expires: waitMs * MS } : { batch: 1, no_wait: true };
    // noMux: a delivered message arrives under its own subject, which the shared reply inbox cannot route
    const message = await this.nats.connection.request(
      `$JS.API.CONSUMER.MSG.NEXT.${this.names.stream}.${this.names.consumer(topic)}`,
      JSON.stringify(request),
      { timeout: waitMs + PULL_MARGIN_MS + this.config.PUBLISH_TIMEOUT_MS, noMux: true },
    );
    // a status answer (404 no messages, 408 expired, 409 a consumer limit) has no ack subject
    if (!message.reply) return undefined;
    return this.toDelivery(message);
  }

  private toDelivery(message: Msg): Delivery {
    const reply = message.reply ?? '';
    const tokens = reply.split('.');
    // $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<timestamp>.<pending>, or the
    // newer form with <domain>.<account hash> after $JS.ACK and a trailing token
    const at = tokens.length === 9 ? 2 : 4;
    const [stream, consumer, delivered, sequence, consumerSequence, timestamp] = tokens.slice(at);
    if (
      tokens[0] !== '$JS' ||
      tokens[1] !== 'ACK' ||
      stream !== this.names.stream ||
      consumer === undefined
    ) {
      throw new Error(`unexpected ack subject ${reply}`);
    }
    return {
      sequence: Number(sequence),
      delivery: Number(delivered),
      consumerSequence: Number(consumerSequence),
      reply,
      data: message.data,
      pushedAtMs: Math.floor(Number(timestamp) / MS),
    };
  }

  private async declareConsumer(topic: string): Promise<number> {
    const name = this.names.consumer(topic);
    const editable = {
      ack_wait: this.config.QUEUE_VISIBILITY_MS * MS,
      max_ack_pending: this.config.QUEUE_MAX_IN_FLIGHT,
    };
    const config: Partial<ConsumerConfig> = {
      durable_name: name,
      filter_subject: this.names.subject(topic),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      // the delivery limit is the queue's: past it a delivery is dead-lettered, never left stuck unacked
      max_deliver: -1,
      ...editable,
    };
    try {
      const info = await this.nats.jsm.consumers.add(this.names.stream, config);
      return (info.config.ack_wait ?? editable.ack_wait) / MS;
    } catch (error) {
      if (!/already (exists|in use)/i.test(String(error))) throw error;
      // declared before with other settings (QUEUE_VISIBILITY_MS or QUEUE_MAX_IN_FLIGHT changed)
      const info = await this.nats.jsm.consumers.update(this.names.stream, name, editable);
      this.logger.log(`updated consumer ${name} of topic ${topic}`);
      return (info.config.ack_wait ?? editable.ack_wait) / MS;
    }
  }

  private async guard<T>(operation: string, call: () => Promise<T>): Promise<T> {
    if (!this.nats.isConnected) throw new UnavailableError('NATS is unreachable', 2);
    try {
      return await call();
    } catch (error) {
      if (error instanceof UnavailableError) throw error;
      this.logger.warn(`queue ${operation} failed: ${String(error)}`);
      throw new UnavailableError(`JetStream did not complete the ${operation}: ${String(error)}`, 2);
    }
  }
}
