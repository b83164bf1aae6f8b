import { Inject, Injectable } from '@nestjs/common';
import { type CycleEdge, type LockMode, UnavailableError } from '@lib/contracts';
import { isTransientDatabaseError } from '@lib/persistence';
import type pg from 'pg';
import { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver.js';

import type { HolderView } from './locks.errors.js';

/** Who asks, and which of this replica's waits it would be (see lock_acquire in the migration). */
export interface AcquireArgs {
  resource: string;
  clientId: string;
  mode: LockMode;
  ttlMs: number;
  waitMs: number;
  session: { pid: number; startedAt: string };
  waiterRef: string;
  replica: string;
}

/** A waiting request that a settle granted (in the same transaction as the step that freed the lock). */
export interface WaiterGrant {
  requestId: number;
  token: number;
  expiresAt: string;
  /** Which wait of the request it was; a retry of its client replaces it. */
  waiterRef: string | null;
}

/** Grants a step made to waiters of the resource: the caller wakes the ones waiting in this replica. */
export interface MadeGrants {
  grants: WaiterGrant[];
}

export type AcquireOutcome = MadeGrants &
  (
    | { outcome: 'granted'; requestId: number; token: number; expiresAt: string }
    | { outcome: 'waiting'; requestId: number; nextExpiryMs: number | null }
    | { outcome: 'conflict'; holders: HolderView[] }
    | { outcome: 'deadlock'; cycle: CycleEdge[] }
    | { outcome: 'mode_mismatch'; current: { mode: LockMode; state: string } }
  );

export type CancelOutcome = MadeGrants &
  (
    | { outcome: 'granted'; token: number; expiresAt: string }
    | { outcome: 'cancelled' | 'gone'; holders: HolderView[] }
    | { outcome: 'superseded' }
  );

export interface WaitStatus {
  id: number;
  state: 'waiting' | 'held';
  token: number | null;
  expiresAt: string;
  waiterRef: string | null;
}

export interface LockState {
  resource: string;
  last_token: number;
  holders: { client_id: string; mode: LockMode; token: number; granted_at: string; expires_at: string }[];
  waiters: { client_id: string; mode: LockMode; requested_at: string; wait_until: string }[];
}

export interface AuditEntry {
  id: string;
  at: string;
  event: string;
  resource: string;
  client_id: string;
  mode: LockMode | null;
  token: number | null;
  replica: string | null;
  detail: Record<string, unknown> | null;
}

interface AcquireRow {
  outcome: AcquireOutcome['outcome'];
  request_id: string | null;
  token: string | null;
  expires_at: Date | null;
  holders: (HolderView & { state?: string })[] | null;
  cycle: CycleEdge[] | null;
  next_expiry_ms: number | null;
  grants: GrantRow[] | null;
}

/** A grant as the migration's functions return it (and notify it) in JSON. */
export interface GrantRow {
  id: number;
  token: number;
  expires_at: string;
  waiter_ref: string | null;
}

/** Reads the `grants` of a function's answer or of a notification. */
export function toWaiterGrants(rows: GrantRow[] | null | undefined): WaiterGrant[] {
  return (rows ?? []).map((row) => ({
    requestId: Number(row.id),
    token: Number(row.token),
    expiresAt: iso(row.expires_at),
    waiterRef: row.waiter_ref,
  }));
}

const iso = (value: Date | string): string => (value instanceof Date ? value : new Date(value)).toISOString();

/**
 * All lock state lives in Postgres; every business step is one call of a function of the migration
 * (one statement, one transaction, one round trip), so a replica holds nothing another one needs.
 */
@Injectable()
export class LocksRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  async acquire(args: AcquireArgs): Promise<AcquireOutcome> {
    const [row] = await this.runPrepared<AcquireRow>(
      'lock_acquire',
      `SELECT * FROM lock_acquire($1, $2, $3, $4, $5, $6, $7::timestamptz, $8, $9)`,
      [
        args.resource,
        args.clientId,
        args.mode,
        args.ttlMs,
        args.waitMs,
        args.session.pid,
        args.session.startedAt,
        args.waiterRef,
        args.replica,
      ],
    );
    const grants = toWaiterGrants(row.grants);
    switch (row.outcome) {
      case 'granted':
        return {
          outcome: 'granted',
          requestId: Number(row.request_id),
          token: Number(row.token),
          expiresAt: iso(row.expires_at!),
          grants,
        };
      case 'waiting':
        return {
          outcome: 'waiting',
          requestId: Number(row.request_id),
          nextExpiryMs: row.next_expiry_ms,
          grants,
        };
      case 'conflict':
        return { outcome: 'conflict', holders: (row.holders ?? []).map(toHolderView), grants };
      case 'deadlock':
        return { outcome: 'deadlock', cycle: row.cycle ?? [], grants };
      case 'mode_mismatch': {
        const current = row.holders?.[0];
        return {
          outcome: 'mode_mismatch',
          current: { mode: current?.mode ?? 'exclusive', state: current?.state ?? 'held' },
          grants,
        };
      }
    }
  }

  /** Ends a lease; `token` null matches the client's lease whatever its token (the seed's release). */
  async release(
    resource: string,
    clientId: string,
    token: number | null,
    replica: string,
  ): Promise<MadeGrants & { outcome: 'released' | 'lease_expired' | 'not_holder'; token: number | null }> {
    const [row] = await this.runPrepared<{
      outcome: 'released' | 'lease_expired' | 'not_holder';
      token: string | null;
      grants: GrantRow[] | null;
    }>('lock_release', `SELECT * FROM lock_release($1, $2, $3, $4)`, [resource, clientId, token, replica]);
    return {
      outcome: row.outcome,
      token: row.token === null ? null : Number(row.token),
      grants: toWaiterGrants(row.grants),
    };
  }

  async renew(
    resource: string,
    clientId: string,
    token: number,
    ttlMs: number,
    replica: string,
  ): Promise<
    MadeGrants &
      (
        | { outcome: 'renewed'; mode: LockMode; expiresAt: string }
        | { outcome: 'lease_expired' | 'not_holder' }
      )
  > {
    const [row] = await this.runPrepared<{
      outcome: 'renewed' | 'lease_expired' | 'not_holder';
      mode: LockMode;
      expires_at: Date;
      grants: GrantRow[] | null;
    }>('lock_renew', `SELECT * FROM lock_renew($1, $2, $3, $4, $5)`, [
      resource,
      clientId,
      token,
      ttlMs,
      replica,
    ]);
    const grants = toWaiterGrants(row.grants);
    return row.outcome === 'renewed'
      ? { outcome: 'renewed', mode: row.mode, expiresAt: iso(row.expires_at), grants }
      : { outcome: row.outcome, grants };
  }

  /** Takes a waiting request out of its queue (its deadline passed), unless it was granted first. */
  async cancelWait(
    wait: { requestId: number; resource: string; waiterRef: string },
    replica: string,
  ): Promise<CancelOutcome> {
    const [row] = await this.run<{
      outcome: CancelOutcome['outcome'];
      token: string | null;
      expires_at: Date | null;
      holders: HolderView[] | null;
      grants: GrantRow[] | null;
    }>(`SELECT * FROM lock_cancel_wait($1, $2, $3, $4)`, [
      wait.requestId,
      wait.resource,
      wait.waiterRef,
      replica,
    ]);
    const grants = toWaiterGrants(row.grants);
    switch (row.outcome) {
      case 'granted':
        return { outcome: 'granted', token: Number(row.token), expiresAt: iso(row.expires_at!), grants };
      case 'cancelled':
      case 'gone':
        return { outcome: row.outcome, holders: (row.holders ?? []).map(toHolderView), grants };
      case 'superseded':
        return { outcome: row.outcome, grants };
    }
  }

  /** Where the given waiting requests stand now (a request no longer listed was removed). */
  async waitStatus(requestIds: number[]): Promise<WaitStatus[]> {
    const rows = await this.run<{
      id: string;
      state: 'waiting' | 'held';
      token: string | null;
      expires_at: Date;
      waiter_ref: string | null;
    }>(`SELECT id, state, token, expires_at, waiter_ref FROM lock_requests WHERE id = ANY($1::bigint[])`, [
      requestIds,
    ]);
    return rows.map((row) => ({
      id: Number(row.id),
      state: row.state,
      token: row.token === null ? null : Number(row.token),
      expiresAt: iso(row.expires_at),
      waiterRef: row.waiter_ref,
    }));
  }

  /** Settles one resource (expiries, abandoned waits, grants); says in how many ms its next lease ends. */
  async sweep(resource: string, replica: string): Promise<MadeGrants & { nextExpiryMs: number | null }> {
    const [row] = await this.run<{ next_expiry_ms: number | null; grants: GrantRow[] | null }>(
      `SELECT * FROM lock_sweep($1, $2)`,
      [resource, replica],
    );
    return { nextExpiryMs: row.next_expiry_ms, grants: toWaiterGrants(row.grants) };
  }

  /** Settles up to `limit` resources with overdue leases or abandoned waits; returns how many. */
  async sweepOverdue(replica: string, limit: number): Promise<number> {
    const [row] = await this.run<{ settled: number }>(`SELECT lock_sweep_overdue($1, $2) AS settled`, [
      replica,
      limit,
    ]);
    return row.settled;
  }

  /** Live holders and waiters of resources, by name after `after`. */
  async describe(resources: { only?: string; after?: string; limit: number }): Promise<LockState[]> {
    const rows = await this.run<{
      resource: string;
      last_token: string;
      holders: LockState['holders'];
      waiters: LockState['waiters'];
    }>(
      `SELECT r.resource, r.last_token,
              coalesce(jsonb_agg(jsonb_build_object('client_id', q.client_id, 'mode', q.mode, 'token', q.token,
                         'granted_at', q.granted_at, 'expires_at', q.expires_at) ORDER BY q.id)
                       FILTER (WHERE q.state = 'held'), '[]') AS holders,
              coalesce(jsonb_agg(jsonb_build_object('client_id', q.client_id, 'mode', q.mode,
                         'requested_at', q.requested_at, 'wait_until', q.expires_at) ORDER BY q.id)
                       FILTER (WHERE q.state = 'waiting'), '[]') AS waiters
       FROM lock_resources r
       LEFT JOIN lock_live_requests q ON q.resource = r.resource
       WHERE ($1::text IS NULL OR r.resource = $1) AND ($2::text IS NULL OR r.resource > $2)
         AND ($1::text IS NOT NULL OR q.id IS NOT NULL)
       GROUP BY r.resource, r.last_token
       ORDER BY r.resource
       LIMIT $3`,
      [resources.only ?? null, resources.after ?? null, resources.limit],
    );
    return rows.map((row) => ({
      resource: row.resource,
      last_token: Number(row.last_token),
      holders: row.holders.map((h) => ({
        ...h,
        token: Number(h.token),
        granted_at: iso(h.granted_at),
        expires_at: iso(h.expires_at),
      })),
      waiters: row.waiters.map((w) => ({
        ...w,
        requested_at: iso(w.requested_at),
        wait_until: iso(w.wait_until),
      })),
    }));
  }

  async listAudit(query: {
    resource?: string;
    clientId?: string;
    cursor?: string;
    limit: number;
    order: 'asc' | 'desc';
  }): Promise<AuditEntry[]> {
    const direction = query.order === 'desc' ? 'DESC' : 'ASC';
    const comparison = query.order === 'desc' ? '<' : '>';
    const rows = await this.run<Omit<AuditEntry, 'at' | 'token'> & { at: Date; token: string | null }>(
      `SELECT a.id::text AS id, a.at, a.event, a.resource, a.client_id, a.mode, a.token, a.replica, a.detail
       FROM lock_audit a
       WHERE ($1::text IS NULL OR a.resource = $1) AND ($2::text IS NULL OR a.client_id = $2)
         AND ($3::bigint IS NULL OR a.id ${comparison} $3)
       ORDER BY a.id ${direction}
       LIMIT $4`,
      [query.resource ?? null, query.clientId ?? null, query.cursor ?? null, query.limit],
    );
    return rows.map((row) => ({
      ...row,
      at: iso(row.at),
      token: row.token === null ? null : Number(row.token),
    }));
  }

  /** Counts over the live state, for `/status`. */
  async countLive(): Promise<{ resources: number; holders: number; waiters: number }> {
    const [row] = await this.run<{ resources: number; holders: number; waiters: number }>(
      `SELECT count(DISTINCT resource)::int AS resources,
              count(*) FILTER (WHERE state = 'held')::int AS holders,
              count(*) FILTER (WHERE state = 'waiting')::int AS waiters
       FROM lock_live_requests`,
    );
    return row;
  }

  /** Runs a statement; a database that cannot answer now (down, failing over) is a 503, not a 500. */
  private async run<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    try {
      return await this.dataSource.query<T[]>(sql, params);
    } catch (error) {
      throw unavailableIfTransient(error);
    }
  }

  /**
   * `run` for the statements of every acquire and release, as a named prepared statement: each pooled
   * connection parses and plans it once instead of on every call (TypeORM's `query` sends unnamed
   * statements). Same pool, same connections: TypeORM's own.
   */
  private async runPrepared<T extends pg.QueryResultRow>(
    name: string,
    sql: string,
    params: unknown[],
  ): Promise<T[]> {
    const pool = (this.dataSource.driver as PostgresDriver).master as pg.Pool;
    try {
      return (await pool.query<T>({ name, text: sql, values: params })).rows;
    } catch (error) {
      throw unavailableIfTransient(error);
    }
  }
}

function unavailableIfTransient(error: unknown): unknown {
  return isTransientDatabaseError(error)
    ? new UnavailableError(`the lock store is unavailable: ${(error as Error).message}`, 1)
    : error;
}

function toHolderView(holder: HolderView): HolderView {
  return {
    client_id: holder.client_id,
    mode: holder.mode,
    granted_at: iso(holder.granted_at),
    expires_at: iso(holder.expires_at),
  };
}
