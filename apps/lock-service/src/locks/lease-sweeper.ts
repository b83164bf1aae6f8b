import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { APP_CONFIG } from '@lib/config';

import type { LockServiceConfig } from '../lock-service.env.js';
import { LOCK_REPLICA } from './lock-waits.js';
import { LocksRepository } from './locks.repository.js';

/**
 * Resources settled per transaction: each holds its resource's advisory lock until it commits, and
 * Postgres's lock table is shared by the whole server (`max_locks_per_transaction` per connection).
 */
const RESOURCES_PER_TRANSACTION = 64;
/** Transactions per sweep at most: up to 512 overdue resources a second per replica. */
const TRANSACTIONS_PER_SWEEP = 8;

/**
 * Housekeeping, not how waiters wake: settles resources whose leases ran out or whose waiters' replica
 * died while no request touched them, so their expiry is recorded in the audit log on time. Every
 * replica sweeps; they skip resources another one is settling.
 */
@Injectable()
export class LeaseSweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(LeaseSweeper.name);
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: LockServiceConfig,
    @Inject(LocksRepository) private readonly repository: LocksRepository,
    @Inject(LOCK_REPLICA) private readonly replica: string,
  ) {}

  onApplicationBootstrap(): void {
    this.schedule();
  }

  onApplicationShutdown(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.sweep(), this.config.LOCK_SWEEP_INTERVAL_MS);
  }

  private async sweep(): Promise<void> {
    try {
      for (let i = 0; i < TRANSACTIONS_PER_SWEEP; i++) {
        const settled = await this.repository.sweepOverdue(this.replica, RESOURCES_PER_TRANSACTION);
        if (settled < RESOURCES_PER_TRANSACTION || this.stopped) break;
      }
    } catch (error) {
      this.logger.warn(`sweep failed: ${String(error)}`);
    } finally {
      this.schedule();
    }
  }
}
