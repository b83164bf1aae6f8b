import { randomUUID } from 'node:crypto';

import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG } from '@lib/config';
import {
  LOCK_RESOURCE_PATTERN,
  type LockGrant,
  type LockMode,
  UnavailableError,
  ValidationFailedError,
} from '@lib/contracts';
import { PgNotificationListener } from '@lib/persistence';

import type { LockServiceConfig } from '../lock-service.env.js';
import { LOCK_REPLICA, LockWaits } from './lock-waits.js';
import {
  DeadlockError,
  LeaseExpiredError,
  LockConflictError,
  LockError,
  LockModeMismatchError,
  NotHolderError,
} from './locks.errors.js';
import { LocksMetrics } from './locks.metrics.js';
import { type AuditEntry, LocksRepository, type LockState, type MadeGrants } from './locks.repository.js';

export interface AcquireRequest {
  client_id: string;
  mode?: LockMode;
  ttl_ms?: number;
  wait_ms?: number;
}

/**
 * The lock manager's operations, the same for HTTP and NATS. Decisions are made in Postgres under the
 * resource's row lock (see the migration); this service checks limits, parks waiting requests with
 * `LockWaits` and turns outcomes into grants or domain errors.
 */
@Injectable()
export class LocksService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: LockServiceConfig,
    @Inject(LocksRepository) private readonly repository: LocksRepository,
    @Inject(LockWaits) private readonly waits: LockWaits,
    @Inject(LocksMetrics) private readonly metrics: LocksMetrics,
    @Inject(PgNotificationListener) private readonly listener: PgNotificationListener,
    @Inject(LOCK_REPLICA) private readonly replica: string,
  ) {}

  async acquire(resource: string, request: AcquireRequest): Promise<LockGrant> {
    const mode = request.mode ?? 'exclusive';
    try {
      const grant = await this.tryAcquire(resource, mode, request);
      this.metrics.count('acquire', 'granted');
      return grant;
    } catch (error) {
      this.metrics.count('acquire', error instanceof LockError ? error.code : 'error');
      throw error;
    }
  }

  async release(resource: string, clientId: string, token: number | null): Promise<{ token: number }> {
    this.checkResource(resource);
    const result = await this.afterStep(
      resource,
      this.repository.release(resource, clientId, token, this.replica),
    );
    this.metrics.count('release', result.outcome);
    switch (result.outcome) {
      case 'released':
        return { token: result.token! };
      case 'lease_expired':
        throw new LeaseExpiredError(resource, clientId);
      case 'not_holder':
        throw new NotHolderError(resource, clientId);
    }
  }

  async renew(resource: string, clientId: string, token: number, ttlMs?: number): Promise<LockGrant> {
    this.checkResource(resource);
    const ttl = this.ttl(ttlMs);
    const result = await this.afterStep(
      resource,
      this.repository.renew(resource, clientId, token, ttl, this.replica),
    );
    this.metrics.count('renew', result.outcome);
    switch (result.outcome) {
      case 'renewed':
        return { resource, client_id: clientId, mode: result.mode, token, expires_at: result.expiresAt };
      case 'lease_expired':
        throw new LeaseExpiredError(resource, clientId);
      case 'not_holder':
        throw new NotHolderError(resource, clientId);
    }
  }

  /** The live holders and waiters of a resource (none when it was never locked). */
  async describe(resource: string): Promise<LockState> {
    this.checkResource(resource);
    const [state] = await this.repository.describe({ only: resource, limit: 1 });
    return state ?? { resource, last_token: 0, holders: [], waiters: [] };
  }

  /** Resources held or awaited now, by name, paged. */
  async list(limit: number, cursor?: string): Promise<{ locks: LockState[]; next_cursor: string | null }> {
    const locks = await this.repository.describe({ after: cursor, limit });
    return { locks, next_cursor: locks.length === limit ? locks[locks.length - 1].resource : null };
  }

  async audit(query: {
    resource?: string;
    client_id?: string;
    limit?: number;
    cursor?: string;
    order?: 'asc' | 'desc';
  }): Promise<{ entries: AuditEntry[]; next_cursor: string | null }> {
    const limit = query.limit ?? 100;
    const entries = await this.repository.listAudit({
      resource: query.resource,
      clientId: query.client_id,
      cursor: query.cursor,
      limit,
      order: query.order ?? 'asc',
    });
    return { entries, next_cursor: entries.length === limit ? entries[entries.length - 1].id : null };
  }

  async status(): Promise<{
    status: 'ok';
    service: string;
    replica: string;
    uptime: number;
    waiting_here: number;
    locks: { resources: number; holders: number; waiters: number };
  }> {
    return {
      status: 'ok',
      service: 'lock-service',
      replica: this.replica,
      uptime: Math.round(process.uptime()),
      waiting_here: this.waits.waiting,
      locks: await this.repository.countLive(),
    };
  }

  private async tryAcquire(resource: string, mode: LockMode, request: AcquireRequest): Promise<LockGrant> {
    this.checkResource(resource);
    const ttlMs = this.ttl(request.ttl_ms);
    const waitMs = request.wait_ms ?? 0;
    if (waitMs > this.config.LOCK_MAX_WAIT_MS) {
      throw this.limitError('wait_ms', `must be at most ${this.config.LOCK_MAX_WAIT_MS} (LOCK_MAX_WAIT_MS)`);
    }
    const session = this.listener.session;
    if (!session) throw new UnavailableError('the lock store connection is down; retry', 1);
    const startedAt = Date.now();
    const waiterRef = randomUUID();
    const ticket = this.waits.watch(resource);
    try {
      const outcome = await this.afterStep(
        resource,
        this.repository.acquire({
          resource,
          clientId: request.client_id,
          mode,
          ttlMs,
          waitMs,
          session,
          waiterRef,
          replica: this.replica,
        }),
      );
      const grant = (token: number, expiresAt: string): LockGrant => ({
        resource,
        client_id: request.client_id,
        mode,
        token,
        expires_at: expiresAt,
      });
      switch (outcome.outcome) {
        case 'granted':
          return grant(outcome.token, outcome.expiresAt);
        case 'conflict':
          throw new LockConflictError(resource, outcome.holders);
        case 'deadlock':
          throw new DeadlockError(resource, outcome.cycle);
        case 'mode_mismatch':
          throw new LockModeMismatchError(resource, request.client_id, outcome.current);
        case 'waiting': {
          const granted = await this.waits.waitForGrant(ticket, {
            requestId: outcome.requestId,
            waiterRef,
            clientId: request.client_id,
            waitMs,
            remainingMs: startedAt + waitMs - Date.now(),
            nextExpiryMs: outcome.nextExpiryMs,
          });
          this.metrics.observeWait((Date.now() - startedAt) / 1_000);
          return grant(granted.token, granted.expiresAt);
        }
      }
    } finally {
      ticket.close();
    }
  }

  /**
   * Wakes this replica's waiters that a step granted (the database notifies only grants to other
   * replicas' waiters). When the step fails, it may still have committed and granted: they look.
   */
  private async afterStep<T extends MadeGrants>(resource: string, step: Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await step;
    } catch (error) {
      this.waits.recheck(resource);
      throw error;
    }
    this.waits.deliver(resource, result.grants);
    return result;
  }

  private checkResource(resource: string): void {
    if (!LOCK_RESOURCE_PATTERN.test(resource)) {
      throw this.limitError('resource', 'must be 1-100 characters of [A-Za-z0-9._:-]');
    }
  }

  private ttl(ttlMs: number | undefined): number {
    const ttl = ttlMs ?? this.config.LOCK_DEFAULT_TTL_MS;
    if (ttl > this.config.LOCK_MAX_TTL_MS) {
      throw this.limitError('ttl_ms', `must be at most ${this.config.LOCK_MAX_TTL_MS} (LOCK_MAX_TTL_MS)`);
    }
    return ttl;
  }

  private limitError(field: string, rule: string): ValidationFailedError {
    return new ValidationFailedError(`${field}: ${rule}`, [{ field, message: rule }]);
  }
}
