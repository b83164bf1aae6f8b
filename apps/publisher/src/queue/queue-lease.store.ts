import { Inject, Injectable } from '@nestjs/common';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { headers as natsHeaders, Empty } from '@nats-io/transport-node';
import { APP_CONFIG } from '@lib/config';
import { queueNames, UnavailableError } from '@lib/contracts';
import { NatsClient } from '@lib/messaging';

import type { PublisherConfig } from '../publisher.env.js';

/** DI token of the lease bucket (a `KV` opened on the queue's lease stream). */
export const LEASE_BUCKET = Symbol('LEASE_BUCKET');

/**
 * - held: a consumer popped this delivery and may ack or nack it;
 * - released: nacked, waiting for its redelivery;
 * - dead_letter: a delivery past the limit, being filed in the dead-letter stream.
 * A settled message (acked, or filed as a dead letter) has its lease deleted: the delete marker is
 * what tells a redelivery still on its way that the message is done.
 */
export type LeaseState = 'held' | 'released' | 'dead_letter';

/** Who holds which delivery of the message at a stream sequence. Shared by every replica. */
export interface Lease {
  topic: string;
  consumer_id: string;
  delivery: number;
  state: LeaseState;
  /** The delivery's ack subject: any replica settles the message through it. */
  reply: string;
  /** End of the visibility in ms since the epoch, on the clock of the replica that wrote it. */
  expires_at: number;
}

/** A lease record: `lease` is undefined once the message is settled (the revision is the delete marker's). */
export interface LeaseRecord {
  lease?: Lease;
  revision: number;
}

/** The header of a KV record naming its operation (ADR-8: PUT when absent, DEL, PURGE). */
const KV_OPERATION = 'KV-Operation';

/** The server's answers to a compare-and-set whose expected revision is no longer the last one. */
const WRONG_LAST_SEQUENCE = new Set<number>([
  JetStreamApiCodes.StreamWrongLastSequence,
  JetStreamApiCodes.StreamWrongLastSequenceUnknown,
]);

/**
 * The leases of popped messages in a JetStream KV bucket with one replica, keyed by stream sequence.
 * Every change is a compare-and-set on the record's revision, so of two replicas racing over one
 * message (a pop of its redelivery and a late ack of the previous one) exactly one wins.
 */
@Injectable()
export class QueueLeaseStore {
  private readonly bucket: string;

  constructor(
    @Inject(LEASE_BUCKET) private readonly kv: KV,
    @Inject(NatsClient) private readonly nats: NatsClient,
    @Inject(APP_CONFIG) config: PublisherConfig,
  ) {
    this.bucket = queueNames(config.NATS_NAMESPACE).leaseBucket;
  }

  /** The record at `sequence`, or undefined when there never was one (or it expired). */
  async read(sequence: number): Promise<LeaseRecord | undefined> {
    const entry = await this.call(() => this.kv.get(key(sequence)));
    if (!entry) return undefined;
    if (entry.operation !== 'PUT') return { revision: entry.revision };
    return { lease: entry.json<Lease>(), revision: entry.revision };
  }

  /** Writes the first lease of a sequence; undefined when a record exists already. */
  create(sequence: number, lease: Lease): Promise<number | undefined> {
    return this.compareAndSet(() => this.kv.create(key(sequence), JSON.stringify(lease)));
  }

  /**
   * Replaces the record at `revision` (a lease or a delete marker; 0: there must be no record at all);
   * undefined when it changed since.
   */
  replace(sequence: number, lease: Lease, revision: number): Promise<number | undefined> {
    return this.compareAndSet(() =>
      this.kv.put(key(sequence), JSON.stringify(lease), { previousSeq: revision }),
    );
  }

  /**
   * Marks the message settled — a delete marker in place of the lease — if the record is still at
   * `revision` (0: there must be no record at all); false when it changed since.
   */
  async settle(sequence: number, revision: number): Promise<boolean> {
    const written = await this.compareAndSet(async () => {
      if (revision > 0) {
        await this.kv.delete(key(sequence), { previousSeq: revision });
        return revision;
      }
      // the KV client sends no expectation for a delete at 0, so the marker is written as the KV
      // protocol defines it: an empty message with the operation header, on the key's subject
      const headers = natsHeaders();
      headers.set(KV_OPERATION, 'DEL');
      const ack = await this.nats.js.publish(`$KV.${this.bucket}.${key(sequence)}`, Empty, {
        headers,
        expect: { lastSubjectSequence: 0 },
      });
      return ack.seq;
    });
    return written !== undefined;
  }

  private async compareAndSet(write: () => Promise<number>): Promise<number | undefined> {
    try {
      return await this.call(write);
    } catch (error) {
      if (error instanceof UnavailableError && error.cause instanceof JetStreamApiError) {
        if (WRONG_LAST_SEQUENCE.has(error.cause.code)) return undefined;
      }
      throw error;
    }
  }

  private async call<T>(operation: () => Promise<T>): Promise<T> {
    if (!this.nats.isConnected) throw new UnavailableError('NATS is unreachable', 2);
    try {
      return await operation();
    } catch (error) {
      const unavailable = new UnavailableError(`the lease store did not answer: ${String(error)}`, 2);
      unavailable.cause = error;
      throw unavailable;
    }
  }
}

function key(sequence: number): string {
  return String(sequence);
}
