import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';

import type { StoredEntry } from '../coherence/local-cache.js';

/** Advisory-lock class of the cache's per-key write lock (the second key is a hash of schema and key). */
const WRITE_LOCK_CLASS = 0x63616368; // "cach"

/**
 * The cache's source of truth. Writes of one key are serialised by a transaction-level advisory lock
 * taken before the version is drawn, so a key's versions increase in commit order: what the
 * coherence protocol compares to tell a stale fill from a fresh one.
 */
@Injectable()
export class CacheRepository {
  constructor(@Inject(DataSource) private readonly db: DataSource) {}

  /** The live entry of `key` (expired ones are absent), with what is left of its TTL. */
  async find(key: string): Promise<StoredEntry | undefined> {
    const rows = await this.db.query<{ value: string; version: string; ttl_ms: number | null }[]>(
      `SELECT value::text AS value, version,
              ceil(extract(epoch FROM expires_at - clock_timestamp()) * 1000)::float8 AS ttl_ms
       FROM cache_entries
       WHERE key = $1 AND (expires_at IS NULL OR expires_at > clock_timestamp())`,
      [key],
    );
    if (rows.length === 0) return undefined;
    const row = rows[0];
    return { value: row.value, version: Number(row.version), ttlMs: row.ttl_ms ?? undefined };
  }

  /**
   * Stores `valueJson` under a new version, expiring after `ttlMs` when given; returns the version.
   * One statement: the materialised lock is taken before the version is drawn, and an upsert's
   * conflict check sees the row as the previous holder of the lock committed it.
   */
  async storeValue(key: string, valueJson: string, ttlMs: number | undefined): Promise<number> {
    const rows = await this.db.query<{ version: string }[]>(
      `WITH locked AS MATERIALIZED (
         SELECT pg_advisory_xact_lock($4, hashtext(current_schema() || ':' || $1)) AS held
       )
       INSERT INTO cache_entries (key, value, version, expires_at)
       SELECT $1, $2::json, nextval('cache_versions'),
              clock_timestamp() + $3::float8 * interval '1 millisecond'
       FROM locked
       ON CONFLICT (key) DO UPDATE SET
         value = excluded.value, version = excluded.version, expires_at = excluded.expires_at,
         updated_at = now()
       RETURNING version`,
      [key, valueJson, ttlMs ?? null, WRITE_LOCK_CLASS],
    );
    return Number(rows[0].version);
  }

  /**
   * Deletes `key`; returns the version of the deletion and whether a live entry was there. Two
   * statements: a DELETE only sees rows committed before it started, so it must start after the lock.
   */
  async deleteKey(key: string): Promise<{ version: number; existed: boolean }> {
    return this.db.transaction(async (tx) => {
      await lockKey(tx, key);
      const rows = await tx.query<{ version: string; existed: boolean }[]>(
        `WITH deleted AS (
           DELETE FROM cache_entries WHERE key = $1
           RETURNING expires_at IS NULL OR expires_at > clock_timestamp() AS live
         )
         SELECT nextval('cache_versions') AS version, coalesce(bool_or(live), false) AS existed FROM deleted`,
        [key],
      );
      return { version: Number(rows[0].version), existed: rows[0].existed };
    });
  }

  /** Removes entries expired for a while (they are invisible already; this only reclaims space). */
  async purgeExpired(): Promise<number> {
    const rows = await this.db.query<{ purged: number }[]>(
      `WITH purged AS (
         DELETE FROM cache_entries WHERE expires_at < clock_timestamp() - interval '1 minute' RETURNING 1
       )
       SELECT count(*)::int AS purged FROM purged`,
    );
    return rows[0].purged;
  }
}

/** Held until commit: the version drawn next is above every committed version of the key. */
async function lockKey(tx: EntityManager, key: string): Promise<void> {
  await tx.query(`SELECT pg_advisory_xact_lock($1, hashtext(current_schema() || ':' || $2))`, [
    WRITE_LOCK_CLASS,
    key,
  ]);
}
