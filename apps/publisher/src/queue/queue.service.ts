import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG } from '@lib/config';
import {
  NotFoundError,
  type QueueCounts,
  type QueueDelivery,
  type QueuePushResult,
  ValidationFailedError,
} from '@lib/contracts';
import { METRICS_REGISTRY } from '@lib/observability';
import { Counter, type Registry } from 'prom-client';

import type { PublisherConfig } from '../publisher.env.js';
import {
  decodeMessageId,
  type DeliveryRef,
  encodeMessageId,
  isIssuedTo,
  issueMessageId,
} from './message-id.js';
import { AlreadyAckedError, MessageTooLargeError, NotLeaseHolderError } from './queue.errors.js';
import { type Lease, QueueLeaseStore } from './queue-lease.store.js';
import { type Delivery, QueueStream } from './queue-stream.js';

export interface PopOptions {
  /** How long the message stays invisible to other consumers; default `QUEUE_VISIBILITY_MS`. */
  visibilityMs?: number;
  /** How long to wait for a message when the topic is empty; default 0 (answer at once). */
  waitMs?: number;
}

/** Deliveries one pop may pass over (already settled, hidden again, dead-lettered) before answering "empty". */
const MAX_SKIPS = 16;
/** Compare-and-set attempts on one lease before giving up to the replica that keeps winning. */
const MAX_LEASE_ATTEMPTS = 3;
/** A redelivery this long before its holder's lease ends came early (a lost nak), not from clock skew. */
const EARLY_REDELIVERY_MS = 500;

/** What a pushed message is stored as: the client's message and headers, as JSON. */
interface StoredBody {
  message: unknown;
  headers: Record<string, string>;
}

type Settled = 'acked' | 'nacked';

/**
 * The at-least-once work queue over JetStream. A topic's messages live in the queue stream and are
 * handed out by its durable pull consumer, which redelivers a message whose visibility ran out. A
 * pop's lease (who holds which delivery) is kept in a KV bucket and changed only by compare-and-set,
 * so an ack is exact: it succeeds for the consumer holding the current delivery, on any replica, and
 * for nobody else — the server alone would accept an ack on an old delivery's subject.
 */
@Injectable()
export class QueueService {
  private readonly logger = new Logger(QueueService.name);
  private readonly messages: Counter<'event'>;

  constructor(
    @Inject(APP_CONFIG) private readonly config: PublisherConfig,
    @Inject(QueueStream) private readonly stream: QueueStream,
    @Inject(QueueLeaseStore) private readonly leases: QueueLeaseStore,
    @Inject(METRICS_REGISTRY) registry: Registry,
  ) {
    if (config.QUEUE_VISIBILITY_MS > config.QUEUE_VISIBILITY_MAX_MS) {
      throw new Error(
        `QUEUE_VISIBILITY_MS (${config.QUEUE_VISIBILITY_MS}) must not exceed QUEUE_VISIBILITY_MAX_MS (${config.QUEUE_VISIBILITY_MAX_MS})`,
      );
    }
    this.messages = new Counter({
      name: 'publisher_queue_messages_total',
      help: 'Work-queue messages by event: pushed, popped, redelivered, acked, nacked, dead_lettered',
      labelNames: ['event'],
      registers: [registry],
    });
  }

  /**
   * Stores a message at the end of the topic. Under an idempotency key, a retry within
   * `DUPLICATE_WINDOW_MS` answers the first push's sequence instead of storing it twice.
   */
  async push(
    topic: string,
    message: unknown,
    headers: Record<string, string> = {},
    idempotencyKey?: string,
  ): Promise<QueuePushResult> {
    const body = JSON.stringify({ message, headers } satisfies StoredBody);
    const bytes = Buffer.byteLength(body);
    const limit = Math.min(this.config.QUEUE_MESSAGE_MAX_BYTES, this.stream.maxBodyBytes);
    if (bytes > limit) {
      throw new MessageTooLargeError(`the message takes ${bytes} bytes as JSON; the limit is ${limit}`, [
        { field: 'message', message: `message and headers must encode to at most ${limit} bytes` },
      ]);
    }
    const msgID =
      idempotencyKey === undefined ? undefined : `${this.stream.names.consumer(topic)}:${idempotencyKey}`;
    const { sequence, duplicate } = await this.stream.push(topic, body, msgID);
    if (!duplicate) this.messages.inc({ event: 'pushed' });
    return { message_id: encodeMessageId({ sequence, delivery: 0 }), sequence };
  }

  /**
   * Hands the next visible message of the topic to `consumerId`, invisible to everyone else until it
   * is acked or nacked or its visibility runs out; undefined when there is none. A delivery past
   * `QUEUE_MAX_DELIVER` is filed in the dead-letter stream instead, and the pop goes on to the next.
   */
  async pop(topic: string, consumerId: string, options: PopOptions = {}): Promise<QueueDelivery | undefined> {
    const visibilityMs = options.visibilityMs ?? this.config.QUEUE_VISIBILITY_MS;
    this.checkDuration('visibility_ms', visibilityMs);
    const waitMs = options.waitMs ?? 0;
    const waitUntil = Date.now() + waitMs;
    for (let skipped = 0; skipped < MAX_SKIPS; skipped++) {
      const pulledAt = Date.now();
      const remainingMs = waitMs > 0 ? waitUntil - pulledAt : 0;
      if (waitMs > 0 && remainingMs <= 0) return undefined;
      const delivery = await this.stream.pull(topic, remainingMs);
      if (!delivery) return undefined;
      const popped = await this.claim(
        topic,
        consumerId,
        delivery,
        visibilityMs,
        waitMs === 0 ? pulledAt : undefined,
      );
      if (popped) return popped;
    }
    return undefined;
  }

  /**
   * Acks the delivery `messageId` names: it never comes back. Only its holder may ack, while nobody has
   * popped the message since. Repeating an ack is safe: a repeat answers 410 (already acked).
   */
  async ack(
    topic: string,
    consumerId: string,
    messageId: string,
  ): Promise<{ status: 'acked'; message_id: string; sequence: number }> {
    const ref = decodeMessageId(messageId);
    await this.settle(topic, consumerId, ref, 'acked', 0);
    this.messages.inc({ event: 'acked' });
    return { status: 'acked', message_id: messageId, sequence: ref.sequence };
  }

  /** Hands the delivery back: the message is visible again after `delayMs` (to any consumer). */
  async nack(
    topic: string,
    consumerId: string,
    messageId: string,
    delayMs = 0,
  ): Promise<{ status: 'nacked'; message_id: string; sequence: number; redelivery_in_ms: number }> {
    const ref = decodeMessageId(messageId);
    this.checkDuration('delay_ms', delayMs);
    await this.settle(topic, consumerId, ref, 'nacked', delayMs);
    this.messages.inc({ event: 'nacked' });
    return { status: 'nacked', message_id: messageId, sequence: ref.sequence, redelivery_in_ms: delayMs };
  }

  async counts(topic: string): Promise<QueueCounts> {
    const counts = await this.stream.counts(topic);
    return {
      topic,
      depth: counts.depth,
      waiting: counts.waiting,
      in_flight: counts.inFlight,
      redelivered: counts.redelivered,
      dead_lettered: counts.deadLettered,
    };
  }

  /**
   * Takes the lease of a fresh delivery for `consumerId`, or passes over it (undefined) when the
   * message was settled meanwhile, when its current holder's lease has not ended, or when it is
   * dead-lettered. A first delivery on the server's timer needs no lease record yet. `pulledAt` is given when the server's own timer (the consumer's `ack_wait`, started
   * at delivery, so not before `pulledAt`) may stand for the visibility; otherwise the delivery is
   * nak'ed with the visibility as its delay, which restarts the server's timer.
   */
  private async claim(
    topic: string,
    consumerId: string,
    delivery: Delivery,
    visibilityMs: number,
    pulledAt: number | undefined,
  ): Promise<QueueDelivery | undefined> {
    const { sequence } = delivery;
    const ackWaitMs = await this.stream.ackWaitMs(topic);
    const useServerTimer = pulledAt !== undefined && visibilityMs === ackWaitMs;
    const startsAt = useServerTimer ? pulledAt : Date.now();
    const deadLetter = delivery.delivery > this.config.QUEUE_MAX_DELIVER;
    const lease: Lease = {
      topic,
      consumer_id: deadLetter ? '' : consumerId,
      delivery: delivery.delivery,
      state: deadLetter ? 'dead_letter' : 'held',
      reply: delivery.reply,
      expires_at: startsAt + visibilityMs,
    };
    if (useServerTimer && delivery.delivery === 1 && !deadLetter) {
      // nobody can hold a first delivery before this pop, and nobody else gets the message until the
      // server's timer ends: the lease is written only if someone else claims a later delivery
      // (compare-and-set against "no record"), or when its holder nacks or acks it
      return this.handOut(topic, consumerId, delivery, lease, 0);
    }
    for (let attempt = 0; attempt < MAX_LEASE_ATTEMPTS; attempt++) {
      // a first delivery has no lease before it: skip the read (create fails if there is one)
      const record = delivery.delivery === 1 && attempt === 0 ? undefined : await this.leases.read(sequence);
      const current = record?.lease;
      if (record && !current && delivery.delivery > 1) {
        // settled while this redelivery was on its way (an ack whose message to the server may be lost)
        await this.stream.settle(delivery.reply, { verb: 'ack' });
        return undefined;
      }
      if (
        current?.state === 'held' &&
        current.delivery < delivery.delivery &&
        current.expires_at - Date.now() > EARLY_REDELIVERY_MS
      ) {
        // redelivered before its holder's visibility ended (the nak setting it was lost): hide it again
        await this.stream.settle(delivery.reply, { verb: 'nak', delayMs: current.expires_at - Date.now() });
        return undefined;
      }
      if (!record && delivery.delivery > 1 && (await this.stream.locate(topic, sequence)) !== 'in_topic') {
        // no lease, not even a delete marker (expired): the stream tells whether it is still to do
        return undefined;
      }
      const revision =
        record === undefined
          ? await this.leases.create(sequence, lease)
          : await this.leases.replace(sequence, lease, record.revision);
      if (revision === undefined) continue;
      if (deadLetter) {
        await this.fileDeadLetter(topic, delivery, revision);
        return undefined;
      }
      if (!useServerTimer) await this.stream.settle(delivery.reply, { verb: 'nak', delayMs: visibilityMs });
      return this.handOut(topic, consumerId, delivery, lease, revision);
    }
    return undefined;
  }

  private handOut(
    topic: string,
    consumerId: string,
    delivery: Delivery,
    lease: Lease,
    revision: number,
  ): QueueDelivery {
    this.messages.inc({ event: delivery.delivery > 1 ? 'redelivered' : 'popped' });
    const stored = decodeBody(delivery.data);
    return {
      message_id: issueMessageId(topic, consumerId, delivery, {
        consumerSequence: delivery.consumerSequence,
        revision,
      }),
      sequence: delivery.sequence,
      topic,
      message: stored.message,
      headers: stored.headers,
      delivery_count: delivery.delivery,
      consumer_id: consumerId,
      pushed_at: new Date(delivery.pushedAtMs).toISOString(),
      lease_expires_at: new Date(lease.expires_at).toISOString(),
    };
  }

  /**
   * Acks or nacks the delivery `ref` for its holder. The lease changes first, by compare-and-set —
   * deleted for an ack, released for a nack — so that no pop of a redelivery can take the message
   * meanwhile; then the server is told through the delivery's ack subject. An id the pop issued to
   * this consumer is tried at the revision it carries, unread; anything else (or a revision that
   * moved) reads the lease to find out. A repeated nack finds its released lease and tells the server
   * again; a repeated ack finds the message settled (410).
   */
  private async settle(
    topic: string,
    consumerId: string,
    ref: DeliveryRef,
    outcome: Settled,
    delayMs: number,
  ): Promise<void> {
    const messageId = encodeMessageId(ref);
    if (ref.delivery === 0) {
      throw new NotLeaseHolderError(
        `${messageId} names the message as pushed; ${outcome === 'acked' ? 'ack' : 'nack'} the message_id a pop returned`,
      );
    }
    if (isIssuedTo(ref, topic, consumerId)) {
      // the id is this consumer's: if the lease is still the one its pop left (its revision, or no record
      // for a first delivery), change it without reading it first
      const { sequence, delivery, lease } = ref;
      const reply = this.stream.ackSubject(topic, sequence, delivery, lease.consumerSequence);
      if (outcome === 'acked') {
        if (await this.leases.settle(sequence, lease.revision)) {
          await this.stream.settle(reply, { verb: 'ack' });
          return;
        }
      } else {
        const released: Lease = {
          topic,
          consumer_id: consumerId,
          delivery,
          state: 'released',
          reply,
          expires_at: Date.now() + delayMs,
        };
        if ((await this.leases.replace(sequence, released, lease.revision)) !== undefined) {
          await this.stream.settle(reply, { verb: 'nak', delayMs });
          return;
        }
      }
    }
    for (let attempt = 0; attempt < MAX_LEASE_ATTEMPTS; attempt++) {
      const record = await this.leases.read(ref.sequence);
      const current = record?.lease;
      if (!record || !current)
        throw await this.refusalWithoutLease(topic, messageId, ref.sequence, record !== undefined);
      this.checkHolder(topic, consumerId, ref, current, messageId, outcome);
      if (outcome === 'acked') {
        if (!(await this.leases.settle(ref.sequence, record.revision))) continue;
        await this.stream.settle(current.reply, { verb: 'ack' });
        return;
      }
      let released = current;
      if (current.state !== 'released') {
        released = { ...current, state: 'released', expires_at: Date.now() + delayMs };
        if ((await this.leases.replace(ref.sequence, released, record.revision)) === undefined) continue;
      }
      await this.stream.settle(current.reply, {
        verb: 'nak',
        delayMs: Math.max(0, released.expires_at - Date.now()),
      });
      return;
    }
    throw new NotLeaseHolderError(`${messageId} changed hands while being settled; pop again`);
  }

  /** Refuses a settle unless `consumerId` holds delivery `ref` (or, for a nack, released it already). */
  private checkHolder(
    topic: string,
    consumerId: string,
    ref: DeliveryRef,
    lease: Lease,
    messageId: string,
    outcome: Settled,
  ): void {
    if (lease.topic !== topic) throw new NotFoundError(`no message ${messageId} in topic ${topic}`);
    if (lease.state === 'dead_letter') {
      throw new AlreadyAckedError(`${messageId} is no longer in the queue: it is being dead-lettered`);
    }
    if (lease.delivery !== ref.delivery) {
      throw new NotLeaseHolderError(
        `the lease of ${messageId} expired: the message was delivered again since (delivery ${lease.delivery})`,
      );
    }
    if (lease.consumer_id !== consumerId) {
      throw new NotLeaseHolderError(`${messageId} is held by another consumer`);
    }
    if (lease.state === 'released' && outcome === 'acked') {
      throw new NotLeaseHolderError(`${messageId} was nacked; wait for its redelivery and pop it again`);
    }
  }

  /**
   * Why a message without a lease cannot be settled: 404 when the stream never held it in this topic,
   * 410 when it is gone or settled (its lease deleted), 409 when it waits and nobody holds it.
   */
  private async refusalWithoutLease(
    topic: string,
    messageId: string,
    sequence: number,
    settled: boolean,
  ): Promise<Error> {
    const whereabouts = await this.stream.locate(topic, sequence);
    switch (whereabouts) {
      case 'in_topic':
        return settled
          ? new AlreadyAckedError(`${messageId} is no longer in the queue: it was acked`)
          : new NotLeaseHolderError(
              `${messageId} is not held by anyone: it was never popped, or its lease expired`,
            );
      case 'gone':
        return new AlreadyAckedError(`${messageId} is no longer in the queue: it was acked or dead-lettered`);
      case 'other_topic':
      case 'unknown':
        return new NotFoundError(`no message ${messageId} in topic ${topic}`);
    }
  }

  /** Files the delivery as a dead letter, acks it, then marks it settled. */
  private async fileDeadLetter(topic: string, delivery: Delivery, revision: number): Promise<void> {
    await this.stream.deadLetter(topic, delivery);
    await this.stream.settle(delivery.reply, { verb: 'ack' });
    await this.leases.settle(delivery.sequence, revision);
    this.messages.inc({ event: 'dead_lettered' });
    this.logger.warn(
      `message ${delivery.sequence} of topic ${topic} dead-lettered after ${delivery.delivery - 1} deliveries`,
    );
  }

  private checkDuration(field: 'visibility_ms' | 'delay_ms', value: number): void {
    const max = this.config.QUEUE_VISIBILITY_MAX_MS;
    if (value > max) {
      throw new ValidationFailedError(`${field} ${value} is above ${max} (QUEUE_VISIBILITY_MAX_MS)`, [
        { field, message: `must not be greater than ${max}` },
      ]);
    }
  }
}

function decodeBody(data: Uint8Array): StoredBody {
  const text = new TextDecoder().decode(data);
  try {
    const body = JSON.parse(text) as Partial<StoredBody>;
    return { message: body.message, headers: body.headers ?? {} };
  } catch {
    // not written by a push (someone published to the subject by hand): hand the text over as it is
    return { message: text, headers: {} };
  }
}
