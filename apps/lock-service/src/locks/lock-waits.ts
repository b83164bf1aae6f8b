import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnModuleInit,
} from '@nestjs/common';
import { UnavailableError } from '@lib/contracts';
import { PgNotificationListener } from '@lib/persistence';

import { LockTimeoutError, WaitSupersededError } from './locks.errors.js';
import { type GrantRow, LocksRepository, toWaiterGrants, type WaiterGrant } from './locks.repository.js';

/** DI token of this process's name in the audit log and the requests it queued. */
export const LOCK_REPLICA = Symbol('LOCK_REPLICA');

export interface GrantedWait {
  token: number;
  expiresAt: string;
}

/** One queued request of this replica, parked until its grant, its deadline or its end. */
interface Waiter {
  requestId: number;
  waiterRef: string;
  resource: string;
  clientId: string;
  waitMs: number;
  deadline: NodeJS.Timeout;
  resolve(grant: GrantedWait): void;
  reject(error: Error): void;
}

/** Grants kept for acquires in flight: enough for the few that can be answered at the same moment. */
const EARLY_GRANTS_KEPT = 256;

/** What this replica watches of one resource: its waiters, and a timer to the holders' next lease expiry. */
class ResourceWatch {
  readonly waiters = new Map<number, Waiter>();
  /**
   * Grants to requests that are not waiters here (yet): an acquire in flight may be one of them, granted
   * before its answer arrived. Only spares that acquire a status read; `generation` is what guarantees
   * it looks.
   */
  readonly early = new Map<number, WaiterGrant>();
  /** Grants and notifications seen that no waiter took: an acquire in flight compares it before and after. */
  generation = 0;
  /** Acquires in flight that may become waiters. */
  pending = 0;
  expiryTimer?: NodeJS.Timeout;
  expiryAt = Number.POSITIVE_INFINITY;
  checking = false;
  recheck = false;

  constructor(readonly resource: string) {}

  get idle(): boolean {
    return this.pending === 0 && this.waiters.size === 0;
  }
}

/** Taken before an acquire is sent, so that a grant notified while it is in flight is not missed. */
export interface WatchTicket {
  readonly resource: string;
  readonly generation: number;
  close(): void;
}

/**
 * Parks this replica's waiting requests and wakes them without polling. A step that frees a lock (a
 * release, a timeout, an expiry) grants the next waiters in its transaction and returns the grants:
 * the replica that made the step wakes its own waiters from that answer (`deliver`), and Postgres
 * notifies the grants to waiters of other replicas. A timer per resource fires at the holders' next
 * lease expiry to settle it (a crashed holder renews nothing and releases nothing). A waiter whose
 * deadline passes cancels its request — or takes the grant that beat it.
 */
@Injectable()
export class LockWaits implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger(LockWaits.name);
  private readonly watches = new Map<string, ResourceWatch>();

  constructor(
    @Inject(PgNotificationListener) private readonly listener: PgNotificationListener,
    @Inject(LocksRepository) private readonly repository: LocksRepository,
    @Inject(LOCK_REPLICA) private readonly replica: string,
  ) {}

  onModuleInit(): void {
    this.listener.onNotification((payload) => this.notified(payload));
    this.listener.onSessionChange((session) => {
      // our queued requests belonged to the lost session: other replicas now drop them from the queues
      if (!session)
        this.failAll(new UnavailableError('the lock store connection was lost while waiting; retry', 1));
    });
  }

  /** Requests of this replica waiting now. */
  get waiting(): number {
    let count = 0;
    for (const watch of this.watches.values()) count += watch.waiters.size;
    return count;
  }

  watch(resource: string): WatchTicket {
    const watch = this.watchOf(resource);
    watch.pending++;
    let closed = false;
    return {
      resource,
      generation: watch.generation,
      close: () => {
        if (closed) return;
        closed = true;
        watch.pending--;
        this.dropIfIdle(watch);
      },
    };
  }

  /** Wakes the waiters of this replica among `grants` (made to waiters of `resource` by a step of ours). */
  deliver(resource: string, grants: readonly WaiterGrant[]): void {
    if (grants.length === 0) return;
    const watch = this.watches.get(resource);
    if (!watch) return;
    for (const grant of grants) {
      const waiter = watch.waiters.get(grant.requestId);
      if (waiter) {
        this.finish(
          watch,
          waiter,
          grant.waiterRef === waiter.waiterRef
            ? grant
            : new WaitSupersededError(waiter.resource, waiter.clientId),
        );
      } else if (watch.pending > 0) {
        watch.generation++;
        watch.early.set(grant.requestId, grant);
        if (watch.early.size > EARLY_GRANTS_KEPT) watch.early.delete(watch.early.keys().next().value!);
      }
    }
  }

  /** Reads where this replica's waiters of `resource` stand: a step that may have granted failed to answer. */
  recheck(resource: string): void {
    const watch = this.watches.get(resource);
    if (watch && watch.waiters.size > 0) void this.check(watch);
  }

  /**
   * Parks a request that `lock_acquire` queued until it is granted (resolves), times out
   * (`LockTimeoutError`), is taken over by a retry of its client (`WaitSupersededError`) or cannot be
   * followed any more (`UnavailableError`).
   */
  waitForGrant(
    ticket: WatchTicket,
    request: {
      requestId: number;
      waiterRef: string;
      clientId: string;
      waitMs: number;
      remainingMs: number;
      nextExpiryMs: number | null;
    },
  ): Promise<GrantedWait> {
    const watch = this.watchOf(ticket.resource);
    return new Promise<GrantedWait>((resolve, reject) => {
      const waiter: Waiter = {
        requestId: request.requestId,
        waiterRef: request.waiterRef,
        resource: ticket.resource,
        clientId: request.clientId,
        waitMs: request.waitMs,
        deadline: setTimeout(() => void this.endAtDeadline(watch, waiter), Math.max(0, request.remainingMs)),
        resolve,
        reject,
      };
      // a retry of the same client through this replica took over the request: the older wait ends
      const replaced = watch.waiters.get(waiter.requestId);
      if (replaced)
        this.finish(watch, replaced, new WaitSupersededError(replaced.resource, replaced.clientId));
      watch.waiters.set(waiter.requestId, waiter);
      this.armExpiry(watch, request.nextExpiryMs);
      const early = watch.early.get(waiter.requestId);
      watch.early.delete(waiter.requestId);
      if (early?.waiterRef === waiter.waiterRef) this.finish(watch, waiter, early);
      else if (watch.generation !== ticket.generation) void this.check(watch);
    });
  }

  /** Graceful stop: every parked request is cancelled in the store (or handed its grant) and answered. */
  async beforeApplicationShutdown(): Promise<void> {
    const waiters = [...this.watches.values()].flatMap((watch) =>
      [...watch.waiters.values()].map((waiter) => ({ watch, waiter })),
    );
    await Promise.all(
      waiters.map(async ({ watch, waiter }) => {
        try {
          const outcome = await this.repository.cancelWait(waiter, this.replica);
          this.deliver(watch.resource, outcome.grants);
          if (outcome.outcome === 'granted') {
            this.finish(watch, waiter, outcome);
            return;
          }
        } catch (error) {
          this.logger.warn(`could not cancel request ${waiter.requestId}: ${String(error)}`);
        }
        this.finish(
          watch,
          waiter,
          new UnavailableError('the lock service replica is shutting down; retry', 1),
        );
      }),
    );
    for (const watch of this.watches.values()) clearTimeout(watch.expiryTimer);
  }

  private watchOf(resource: string): ResourceWatch {
    let watch = this.watches.get(resource);
    if (!watch) {
      watch = new ResourceWatch(resource);
      this.watches.set(resource, watch);
    }
    return watch;
  }

  /** A notification of `lock_settle`: `{resource, grants?}`; without grants (too many) the table tells. */
  private notified(payload: string): void {
    let message: { resource?: unknown; grants?: GrantRow[] };
    try {
      message = JSON.parse(payload) as typeof message;
    } catch {
      this.logger.warn(`ignored a notification that is not JSON: ${payload.slice(0, 200)}`);
      return;
    }
    if (typeof message.resource !== 'string') return;
    if (Array.isArray(message.grants)) {
      this.deliver(message.resource, toWaiterGrants(message.grants));
      return;
    }
    const watch = this.watches.get(message.resource);
    if (!watch) return;
    watch.generation++;
    if (watch.waiters.size > 0) void this.check(watch);
  }

  /** Reads where this replica's waiters of the resource stand and answers the granted ones. */
  private async check(watch: ResourceWatch): Promise<void> {
    if (watch.checking) {
      watch.recheck = true;
      return;
    }
    watch.checking = true;
    try {
      do {
        watch.recheck = false;
        const ids = [...watch.waiters.keys()];
        if (ids.length === 0) break;
        const statuses = new Map(
          (await this.repository.waitStatus(ids)).map((status) => [status.id, status]),
        );
        for (const id of ids) {
          const waiter = watch.waiters.get(id);
          const status = statuses.get(id);
          if (!waiter) continue;
          if (!status) {
            // removed by another replica's settle: past its deadline, or our session looked dead
            this.finish(watch, waiter, new UnavailableError('the waiting request left the queue; retry', 1));
          } else if (status.waiterRef !== waiter.waiterRef) {
            this.finish(watch, waiter, new WaitSupersededError(waiter.resource, waiter.clientId));
          } else if (status.state === 'held' && status.token !== null) {
            this.finish(watch, waiter, { token: status.token, expiresAt: status.expiresAt });
          }
        }
      } while (watch.recheck);
    } catch (error) {
      // the deadline timers still answer every waiter; the next notification checks again
      this.logger.warn(`could not check the waiters of ${watch.resource}: ${String(error)}`);
    } finally {
      watch.checking = false;
    }
  }

  private async endAtDeadline(watch: ResourceWatch, waiter: Waiter): Promise<void> {
    if (watch.waiters.get(waiter.requestId) !== waiter) return;
    try {
      const outcome = await this.repository.cancelWait(waiter, this.replica);
      this.deliver(watch.resource, outcome.grants);
      switch (outcome.outcome) {
        case 'granted':
          this.finish(watch, waiter, outcome);
          break;
        case 'cancelled':
        case 'gone':
          // gone: another settle removed it first, past its deadline: a timeout all the same
          this.finish(watch, waiter, new LockTimeoutError(waiter.resource, waiter.waitMs, outcome.holders));
          break;
        case 'superseded':
          this.finish(watch, waiter, new WaitSupersededError(waiter.resource, waiter.clientId));
          break;
      }
    } catch (error) {
      this.finish(watch, waiter, error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** Keeps one timer per resource, at the earliest lease expiry a waiter depends on. */
  private armExpiry(watch: ResourceWatch, inMs: number | null): void {
    if (inMs === null || watch.waiters.size === 0) return;
    const at = Date.now() + Math.max(0, inMs) + 2;
    if (watch.expiryTimer && watch.expiryAt <= at) return;
    clearTimeout(watch.expiryTimer);
    watch.expiryAt = at;
    watch.expiryTimer = setTimeout(() => void this.settleAtExpiry(watch), at - Date.now());
  }

  private async settleAtExpiry(watch: ResourceWatch): Promise<void> {
    watch.expiryTimer = undefined;
    watch.expiryAt = Number.POSITIVE_INFINITY;
    if (watch.waiters.size === 0) return;
    try {
      const settled = await this.repository.sweep(watch.resource, this.replica);
      this.deliver(watch.resource, settled.grants);
      this.armExpiry(watch, settled.nextExpiryMs);
    } catch (error) {
      this.logger.warn(`could not settle ${watch.resource}: ${String(error)}`);
      this.armExpiry(watch, 500);
    }
  }

  private finish(watch: ResourceWatch, waiter: Waiter, result: GrantedWait | Error): void {
    if (watch.waiters.get(waiter.requestId) !== waiter) return;
    watch.waiters.delete(waiter.requestId);
    clearTimeout(waiter.deadline);
    if (result instanceof Error) waiter.reject(result);
    else waiter.resolve({ token: result.token, expiresAt: result.expiresAt });
    this.dropIfIdle(watch);
  }

  private failAll(error: Error): void {
    for (const watch of [...this.watches.values()]) {
      for (const waiter of [...watch.waiters.values()]) this.finish(watch, waiter, error);
    }
  }

  private dropIfIdle(watch: ResourceWatch): void {
    if (!watch.idle || this.watches.get(watch.resource) !== watch) return;
    clearTimeout(watch.expiryTimer);
    watch.early.clear();
    this.watches.delete(watch.resource);
  }
}
