import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';

import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import type { Msg } from '@nats-io/transport-node';
import { APP_CONFIG } from '@lib/config';
import {
  type CacheInvalidation,
  type CacheInvalidationAck,
  type CacheSubjects,
  cacheSubjects,
} from '@lib/contracts';
import { NatsClient } from '@lib/messaging';
import { isTransientDatabaseError } from '@lib/persistence';

import type { CacheServiceConfig } from '../cache-service.env.js';
import { LocalCache } from './local-cache.js';
import { type Member, MembershipRepository } from './membership.repository.js';

/** What a write's invalidation took: who had to drop the key, who said so, whose lease was waited out. */
export interface InvalidationReport {
  /** Other replicas with a live lease after the commit. */
  replicas: number;
  acked: number;
  /** Replicas that did not acknowledge in time: their lease was revoked and waited out. */
  lease_waits: number;
  /** Milliseconds from the end of the commit to the last acknowledgement (or lease run out). */
  ms: number;
}

/** Why a replica stopped serving from memory. */
export type CoherenceLoss =
  | 'nats-disconnected'
  | 'nats-unresponsive'
  | 'lease-lapsed'
  | 'lease-revoked'
  | 'database-error'
  | 'shutdown';

export interface CoherenceCounters {
  invalidationsSent: number;
  invalidationsReceived: number;
  acksReceived: number;
  leaseWaits: number;
  sequenceGaps: number;
  /** Times memory was dropped and rebuilt: lost coherence, lease lapse, sequence gap. */
  resyncs: number;
}

interface PendingAcks {
  missing: Set<string>;
  done: () => void;
}

/** The share of the lease a replica trusts by its own clock, so it stops before the database clock says so. */
const LOCAL_LEASE_SHARE = 0.9;
/** Added to a revoked lease's remaining time before a writer proceeds: clock-rate drift allowance. */
const LEASE_WAIT_MARGIN_MS = 20;
/** Attempts at the database steps after a commit (membership read, revocation) before giving up. */
const POST_COMMIT_ATTEMPTS = 20;
/** Departed members' rows are swept now and then, by whichever replica renews. */
const PURGE_EVERY_RENEWALS = 30;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The write-invalidate protocol of one replica. The guarantee: once a write has answered, no replica
 * serves the value it replaced.
 *
 * - Membership: a replica serves from memory only while it holds a lease in `cache_members`
 *   (renewed every `CACHE_RENEW_INTERVAL_MS`, and only after a NATS round trip succeeded), by its own
 *   conservative clock, and while its NATS connection is up. Losing any of these suspends memory;
 *   regaining them clears it and starts a new generation before serving again.
 * - A write, once committed, is invalidated locally, then published with the sender's sequence; the
 *   writer waits for an acknowledgement from every other member with a live lease. A member that
 *   does not answer within `CACHE_ACK_TIMEOUT_MS` has its lease revoked (it can no longer renew) and
 *   the writer waits until that lease has run out: by then the member has stopped serving memory.
 * - A receiver acknowledges every invalidation (also while suspended) and, when a sender's sequence
 *   skips a number, forgets its whole memory: it missed an invalidation.
 */
@Injectable()
export class CoherenceService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(CoherenceService.name);
  readonly replicaId = randomUUID();
  readonly counters: CoherenceCounters = {
    invalidationsSent: 0,
    invalidationsReceived: 0,
    acksReceived: 0,
    leaseWaits: 0,
    sequenceGaps: 0,
    resyncs: 0,
  };
  private readonly subjects: CacheSubjects;
  private readonly address: string;
  private readonly pendingAcks = new Map<number, PendingAcks>();
  /** Last sequence heard from each sender since this replica last resynced. */
  private readonly lastSequence = new Map<string, number>();
  private sequence = 0;
  private incarnation = 0;
  private renewals = 0;
  private timer?: NodeJS.Timeout;
  private ticking = false;
  private closing = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: CacheServiceConfig,
    @Inject(NatsClient) private readonly nats: NatsClient,
    @Inject(LocalCache) private readonly local: LocalCache,
    @Inject(MembershipRepository) private readonly members: MembershipRepository,
  ) {
    this.subjects = cacheSubjects(config.NATS_NAMESPACE);
    this.address = `${hostname()}:${process.pid}:${config.PORT}`;
  }

  /** True while this replica serves reads from memory. */
  get coherent(): boolean {
    return this.local.serving;
  }

  /** Subscribes before joining, so no write that counts this replica in can miss it. */
  async onApplicationBootstrap(): Promise<void> {
    // both stay until the platform drains NATS at shutdown: writes in flight still hear their acks,
    // and writers that counted this replica in before it left still get its acknowledgements
    const connection = this.nats.connection;
    connection.subscribe(this.subjects.invalidations, {
      callback: (error, message) => {
        if (!error) this.receive(message);
      },
    });
    connection.subscribe(this.subjects.acks(this.replicaId), {
      callback: (error, message) => {
        if (!error) this.receiveAck(message);
      },
    });
    void this.watchConnection();
    await this.tick();
    this.timer = setInterval(() => void this.tick(), this.config.CACHE_RENEW_INTERVAL_MS);
  }

  /** Stops serving memory and leaves the membership, so writers stop waiting for this replica. */
  async beforeApplicationShutdown(): Promise<void> {
    this.closing = true;
    clearInterval(this.timer);
    this.loseCoherence('shutdown');
    try {
      await this.members.leave(this.replicaId);
    } catch (error) {
      // the lease runs out by itself; writers meanwhile wait it out
      this.logger.warn(`could not leave the membership: ${String(error)}`);
    }
  }

  /**
   * Makes every replica drop `key` below `version` (committed already) and returns once none can
   * serve the replaced value any more.
   */
  async invalidateEverywhere(key: string, version: number): Promise<InvalidationReport> {
    this.local.invalidate(key, version);
    const started = performance.now();
    const others = (await this.afterCommit(() => this.members.live())).filter(
      (member) => member.replicaId !== this.replicaId,
    );
    if (others.length === 0) return { replicas: 0, acked: 0, lease_waits: 0, ms: 0 };
    const missing = await this.collectAcks(key, version, others);
    const silent = others.filter((member) => missing.has(member.replicaId));
    if (silent.length > 0) {
      this.counters.leaseWaits += silent.length;
      const remainingMs = await this.afterCommit(() => this.members.revoke(silent));
      this.logger.warn(
        `${silent.length} replica(s) did not acknowledge ${key}@${version}: waiting ${Math.ceil(remainingMs)} ms for their lease to run out`,
      );
      if (remainingMs > 0) await delay(remainingMs + LEASE_WAIT_MARGIN_MS);
    }
    return {
      replicas: others.length,
      acked: others.length - silent.length,
      lease_waits: silent.length,
      ms: Math.round((performance.now() - started) * 100) / 100,
    };
  }

  /** Publishes the invalidation and waits for the acks of `members`; returns those that did not answer. */
  private async collectAcks(key: string, version: number, members: Member[]): Promise<Set<string>> {
    const missing = new Set(members.map((member) => member.replicaId));
    if (!this.nats.isConnected) return missing;
    const sequence = ++this.sequence;
    let timer: NodeJS.Timeout | undefined;
    const answered = new Promise<void>((done) => {
      this.pendingAcks.set(sequence, { missing, done });
      timer = setTimeout(done, this.config.CACHE_ACK_TIMEOUT_MS);
    });
    try {
      const invalidation: CacheInvalidation = {
        replica: this.replicaId,
        sequence,
        key,
        version,
        sent_at: Date.now(),
      };
      this.nats.connection.publish(
        this.subjects.invalidations,
        encoder.encode(JSON.stringify(invalidation)),
        {
          reply: this.subjects.acks(this.replicaId),
        },
      );
      this.counters.invalidationsSent++;
      await answered;
    } catch (error) {
      // a connection closing under the publish: the members that did not answer are waited out
      this.logger.warn(`invalidation of ${key}@${version} not published: ${String(error)}`);
    } finally {
      clearTimeout(timer);
      this.pendingAcks.delete(sequence);
    }
    return missing;
  }

  private receiveAck(message: Msg): void {
    let ack: CacheInvalidationAck;
    try {
      ack = JSON.parse(decoder.decode(message.data)) as CacheInvalidationAck;
    } catch {
      return;
    }
    this.counters.acksReceived++;
    const pending = this.pendingAcks.get(ack.sequence);
    if (!pending) return;
    pending.missing.delete(ack.replica);
    if (pending.missing.size === 0) pending.done();
  }

  private receive(message: Msg): void {
    let invalidation: CacheInvalidation;
    try {
      invalidation = JSON.parse(decoder.decode(message.data)) as CacheInvalidation;
    } catch {
      this.logger.warn(`undecodable invalidation on ${message.subject}`);
      return;
    }
    if (invalidation.replica === this.replicaId) return;
    this.counters.invalidationsReceived++;
    const last = this.lastSequence.get(invalidation.replica);
    this.lastSequence.set(invalidation.replica, Math.max(last ?? 0, invalidation.sequence));
    if (last !== undefined && invalidation.sequence !== last + 1) {
      this.counters.sequenceGaps++;
      this.logger.warn(
        `invalidation sequence of ${invalidation.replica} jumped from ${last} to ${invalidation.sequence}: resyncing`,
      );
      this.resync();
    }
    this.local.invalidate(invalidation.key, invalidation.version);
    const ack: CacheInvalidationAck = { replica: this.replicaId, sequence: invalidation.sequence };
    if (message.reply) message.respond(encoder.encode(JSON.stringify(ack)));
  }

  /** A missed invalidation: everything in memory may be stale; what is read from now on is not. */
  private resync(): void {
    this.counters.resyncs++;
    this.local.clear();
  }

  private loseCoherence(reason: CoherenceLoss): void {
    if (this.local.serving) {
      this.counters.resyncs++;
      this.logger.warn(`serving from the database only: ${reason}`);
    }
    this.local.suspend();
    this.lastSequence.clear();
  }

  /**
   * Renews the lease, or (re)joins: only after a NATS round trip, so a replica that cannot hear
   * invalidations lets its lease run out. Memory is cleared before every join.
   */
  private async tick(): Promise<void> {
    if (this.ticking || this.closing) return;
    this.ticking = true;
    try {
      if (!(await this.natsAnswers())) {
        this.loseCoherence(this.nats.isConnected ? 'nats-unresponsive' : 'nats-disconnected');
        return;
      }
      const lease = this.config.CACHE_LEASE_MS;
      const validFor = lease * LOCAL_LEASE_SHARE;
      if (this.local.serving) {
        const sentAt = performance.now();
        if (await this.members.renew(this.replicaId, this.incarnation, lease)) {
          this.local.extendLease(sentAt + validFor);
          if (++this.renewals % PURGE_EVERY_RENEWALS === 0) await this.members.purgeDeparted();
          return;
        }
        this.loseCoherence('lease-revoked');
      } else if (this.incarnation > 0) {
        this.loseCoherence('lease-lapsed');
      }
      const sentAt = performance.now();
      this.incarnation = await this.members.register(this.replicaId, this.address, lease);
      if (this.closing || !this.nats.isConnected) return;
      this.local.resume(sentAt + validFor);
      this.lastSequence.clear();
      this.logger.log(`serving from memory (incarnation ${this.incarnation})`);
    } catch (error) {
      this.loseCoherence('database-error');
      this.logger.warn(`lease not renewed: ${String(error)}`);
    } finally {
      this.ticking = false;
    }
  }

  /** Whether the server answers a round trip in time (a silent partition leaves the connection "up"). */
  private async natsAnswers(): Promise<boolean> {
    if (!this.nats.isConnected) return false;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.nats.connection.flush().then(() => true),
        new Promise<boolean>(
          (done) => (timer = setTimeout(() => done(false), this.config.CACHE_RENEW_INTERVAL_MS)),
        ),
      ]);
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  private async watchConnection(): Promise<void> {
    for await (const status of this.nats.connection.status()) {
      switch (status.type) {
        case 'disconnect':
          this.loseCoherence('nats-disconnected');
          break;
        case 'staleConnection':
          this.loseCoherence('nats-unresponsive');
          break;
        case 'slowConsumer':
          // messages were dropped on the client side: some may have been invalidations
          this.resync();
          break;
        case 'reconnect':
          void this.tick();
          break;
        default:
          break;
      }
    }
  }

  /** A database step after the commit: retried through transient failures, since the write already happened. */
  private async afterCommit<T>(step: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await step();
      } catch (error) {
        if (attempt >= POST_COMMIT_ATTEMPTS || !isTransientDatabaseError(error)) throw error;
        await delay(Math.min(1_000, 50 * 2 ** attempt));
      }
    }
  }
}
