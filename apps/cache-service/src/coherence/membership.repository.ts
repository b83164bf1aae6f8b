import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** A replica whose lease was valid (by the database clock) when the membership was read. */
export interface Member {
  replicaId: string;
  incarnation: number;
}

/** How long departed members stay listed before any replica removes their row. */
const DEPARTED_KEPT_MS = 60_000;

/**
 * The replicas of the cache and their leases, on the database clock. A replica renews its lease while
 * it can hear invalidations; a writer that misses a replica's acknowledgement revokes the lease (so it
 * can no longer be renewed) and waits until it has run out.
 */
@Injectable()
export class MembershipRepository {
  constructor(@Inject(DataSource) private readonly db: DataSource) {}

  /** Joins (or rejoins with a new incarnation, clearing a revocation) with a lease of `leaseMs`. */
  async register(replicaId: string, address: string, leaseMs: number): Promise<number> {
    const rows = await this.db.query<{ incarnation: string }[]>(
      `INSERT INTO cache_members AS m (replica_id, address, expires_at)
       VALUES ($1, $2, now() + $3 * interval '1 millisecond')
       ON CONFLICT (replica_id) DO UPDATE SET
         incarnation = m.incarnation + 1,
         address = excluded.address,
         expires_at = excluded.expires_at,
         revoked_at = NULL,
         registered_at = now()
       RETURNING incarnation`,
      [replicaId, address, leaseMs],
    );
    return Number(rows[0].incarnation);
  }

  /**
   * Extends a lease that is still valid and not revoked; false otherwise (the replica must then
   * forget its memory and register again: a writer may have gone ahead without it).
   */
  async renew(replicaId: string, incarnation: number, leaseMs: number): Promise<boolean> {
    // a CTE: TypeORM answers a bare UPDATE with [rows, count]
    const rows = await this.db.query<{ renewed: number }[]>(
      `WITH renewed AS (
         UPDATE cache_members SET expires_at = now() + $3 * interval '1 millisecond'
         WHERE replica_id = $1 AND incarnation = $2 AND revoked_at IS NULL AND expires_at > now()
         RETURNING 1
       )
       SELECT count(*)::int AS renewed FROM renewed`,
      [replicaId, incarnation, leaseMs],
    );
    return rows[0].renewed === 1;
  }

  /** Replicas with a valid, unrevoked lease now. */
  async live(): Promise<Member[]> {
    const rows = await this.db.query<{ replica_id: string; incarnation: string }[]>(
      `SELECT replica_id, incarnation FROM cache_members
       WHERE revoked_at IS NULL AND expires_at > clock_timestamp()`,
    );
    return rows.map((row) => ({ replicaId: row.replica_id, incarnation: Number(row.incarnation) }));
  }

  /**
   * Revokes the leases of `members` (those still in that incarnation) and returns how many
   * milliseconds the longest of them has left by the database clock (0 when none is left).
   */
  async revoke(members: Member[]): Promise<number> {
    const rows = await this.db.query<{ remaining_ms: number | null }[]>(
      `WITH revoked AS (
         UPDATE cache_members m SET revoked_at = coalesce(m.revoked_at, clock_timestamp())
         FROM unnest($1::text[], $2::bigint[]) AS r(replica_id, incarnation)
         WHERE m.replica_id = r.replica_id AND m.incarnation = r.incarnation
         RETURNING m.expires_at
       )
       SELECT greatest(0, max(extract(epoch FROM expires_at - clock_timestamp()) * 1000))::float8 AS remaining_ms
       FROM revoked`,
      [members.map((m) => m.replicaId), members.map((m) => m.incarnation)],
    );
    return rows[0]?.remaining_ms ?? 0;
  }

  /** Leaves the membership (graceful shutdown, after memory stopped being served). */
  async leave(replicaId: string): Promise<void> {
    await this.db.query(`DELETE FROM cache_members WHERE replica_id = $1`, [replicaId]);
  }

  /** Removes rows of replicas gone for a while (crashed ones never leave by themselves). */
  async purgeDeparted(): Promise<void> {
    await this.db.query(
      `DELETE FROM cache_members WHERE expires_at < now() - $1 * interval '1 millisecond'`,
      [DEPARTED_KEPT_MS],
    );
  }
}
