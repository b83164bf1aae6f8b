import { hostname } from 'node:os';

import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { APP_CONFIG } from '@lib/config';
import { METRICS_REGISTRY } from '@lib/observability';
import { Counter, Gauge, type Registry } from 'prom-client';

import type { AggregatorConfig } from '../aggregator.env.js';
import { IngestService } from '../ingest/ingest.service.js';
import { type Membership, MembershipRepository, type MemberView } from './membership.repository.js';
import { assignPartitions } from './rendezvous.js';

/** What `GET /stats` shows of the consumer group. */
export interface OwnershipView {
  /** This replica's id. */
  replica: string;
  partitions: { count: number; owned: number[]; unowned: number[] };
  members: MemberView[];
}

/**
 * Keeps this replica's share of the partitions, and only that: every `REBALANCE_INTERVAL_MS` it reads
 * the live members, computes the rendezvous assignment every replica computes alike, stops and releases
 * the partitions it should no longer own (the batch in hand is committed first), and leases and starts
 * the ones it should. A partition is consumed only under its lease, so a new owner starts after the old
 * one let go, from the watermark the old one committed; a killed owner's leases vanish with its database
 * session. Exactness never rests on the lease alone: every commit checks the partition's watermark.
 */
@Injectable()
export class OwnershipService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(OwnershipService.name);
  readonly replica: string;
  private membership?: Membership;
  private timer?: NodeJS.Timeout;
  private ticking: Promise<void> = Promise.resolve();
  private stopped = false;
  private lastProblem?: string;
  private readonly handoffs: Counter<'direction'>;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AggregatorConfig,
    @Inject(MembershipRepository) private readonly members: MembershipRepository,
    @Inject(IngestService) private readonly ingest: IngestService,
    @Inject(METRICS_REGISTRY) registry: Registry,
  ) {
    this.replica = config.REPLICA_ID ?? `${hostname()}:${process.pid}`;
    this.handoffs = new Counter({
      name: 'aggregator_partition_handoffs_total',
      help: 'Partitions this replica started (acquired) or stopped consuming (released)',
      labelNames: ['direction'],
      registers: [registry],
    });
    new Gauge({
      name: 'aggregator_partitions_owned',
      help: 'Partitions this replica consumes now',
      registers: [registry],
      collect() {
        this.set(ingest.partitions().length);
      },
    });
  }

  onApplicationBootstrap(): void {
    this.schedule(0);
  }

  /** Before NATS is drained: every partition finishes its batch in hand, then the leases go. */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
    await this.ingest.stopAll();
    await this.membership?.leave();
    this.logger.log('left the consumer group');
  }

  /** The consumer group as the database sees it: the same on every replica. */
  async view(): Promise<OwnershipView> {
    const members = await this.members.view();
    const held = new Set(members.flatMap((m) => m.partitions));
    const all = Array.from({ length: this.config.PARTITIONS }, (_, p) => p);
    return {
      replica: this.replica,
      partitions: {
        count: this.config.PARTITIONS,
        owned: members.find((m) => m.replica === this.replica)?.partitions ?? [],
        unowned: all.filter((p) => !held.has(p)),
      },
      members,
    };
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.ticking = this.rebalance().finally(() => this.schedule(this.config.REBALANCE_INTERVAL_MS));
    }, delayMs);
  }

  private async rebalance(): Promise<void> {
    try {
      const membership = await this.ensureMembership();
      const live = (await this.members.view()).map((m) => m.replica);
      if (!live.includes(this.replica)) throw new Error('this replica is missing from the live members');
      const owners = assignPartitions(live, this.config.PARTITIONS);
      const wanted = new Set(owners.flatMap((owner, p) => (owner === this.replica ? [p] : [])));
      const consuming = this.ingest.partitions();
      const leaving = consuming.filter((p) => !wanted.has(p));
      await Promise.all(
        leaving.map(async (partition) => {
          await this.ingest.stopPartition(partition);
          await membership.release(partition);
          this.handoffs.inc({ direction: 'released' });
        }),
      );
      const acquired: number[] = [];
      for (const partition of wanted) {
        if (this.stopped || consuming.includes(partition)) continue;
        // refused while the previous owner is still finishing its batch: taken on a later round
        if (!(await membership.tryLease(partition))) continue;
        this.ingest.startPartition(partition);
        this.handoffs.inc({ direction: 'acquired' });
        acquired.push(partition);
      }
      if (leaving.length > 0 || acquired.length > 0) {
        this.logger.log(
          `${live.length} member(s); released [${leaving.join(',')}], acquired [${acquired.join(',')}], ` +
            `consuming [${this.ingest.partitions().join(',')}]`,
        );
      }
      await this.members.sweepDeparted();
      if (this.lastProblem !== undefined) this.logger.log('rebalancing works again');
      this.lastProblem = undefined;
    } catch (error) {
      const problem = error instanceof Error ? error.message : String(error);
      if (problem !== this.lastProblem) this.logger.warn(`rebalancing failed, retrying: ${problem}`);
      this.lastProblem = problem;
    }
  }

  /** The membership in a live session; after a lost one, every partition stops before joining again. */
  private async ensureMembership(): Promise<Membership> {
    if (this.membership?.alive) return this.membership;
    if (this.membership) {
      this.membership = undefined;
      await this.ingest.stopAll();
    }
    this.membership = await this.members.join(this.replica, (error) => this.onSessionLost(error));
    this.logger.log(`joined the consumer group as ${this.replica}`);
    return this.membership;
  }

  /** The leases died with the session: stop consuming now rather than at the next round. */
  private onSessionLost(error: Error): void {
    this.logger.warn(`database session lost, stopping every partition: ${error.message}`);
    void this.ingest.stopAll();
  }
}
