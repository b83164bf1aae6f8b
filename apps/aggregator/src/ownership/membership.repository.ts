import { createHash } from 'node:crypto';

import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG } from '@lib/config';
import { messagingNames } from '@lib/contracts';
import { DatabaseSession } from '@lib/persistence';
import { DataSource } from 'typeorm';

import type { AggregatorConfig } from '../aggregator.env.js';

/** A live member of the stream's consumer group and the partitions whose leases it holds. */
export interface MemberView {
  replica: string;
  joined_at: string;
  partitions: number[];
}

/** Thrown by `join` when another live replica already uses the member id. */
export class MemberIdInUseError extends Error {
  constructor(memberId: string) {
    super(
      `replica id "${memberId}" is in use by another live aggregator: give each replica its own REPLICA_ID`,
    );
    this.name = 'MemberIdInUseError';
  }
}

/** A non-negative 31-bit key for a two-key advisory lock (`pg_locks` shows keys as unsigned oids). */
function lockKey(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32BE(0) & 0x7fffffff;
}

/*
 * The members whose member lock is held by the session they recorded, with the partition locks that
 * session holds. Advisory locks of a two-key call show as classid = key1, objid = key2, objsubid = 2.
 */
const VIEW_SQL = `
WITH held AS (
  SELECT classid::bigint AS space, objid::bigint AS key, pid
  FROM pg_locks
  WHERE locktype = 'advisory' AND granted AND objsubid = 2
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND classid::bigint IN ($2, $3)
)
SELECT m.member_id,
       m.joined_at,
       coalesce(array_agg(p.key ORDER BY p.key) FILTER (WHERE p.key IS NOT NULL), '{}') AS partitions
FROM aggregator_members m
JOIN held h ON h.space = $2 AND h.key = m.member_key AND h.pid = m.backend_pid
LEFT JOIN held p ON p.space = $3 AND p.pid = m.backend_pid
WHERE m.stream = $1
GROUP BY m.member_id, m.joined_at
ORDER BY m.member_id`;

/**
 * Membership of the aggregator replicas and their partition leases, kept in Postgres advisory locks:
 * a member holds a lock on its id, and an owner a lock on each partition, in one dedicated session.
 * Both die with the session — a killed replica's TCP connection closes and the server drops its
 * locks at once — so the live members and the owners are read from `pg_locks`, never from a
 * heartbeat that could lag. Locks are per database: the keys include the schema and the stream.
 */
@Injectable()
export class MembershipRepository {
  private readonly stream: string;
  private readonly memberSpace: number;
  private readonly partitionSpace: number;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AggregatorConfig,
    @Inject(DataSource) private readonly dataSource: DataSource,
  ) {
    this.stream = messagingNames(config.NATS_NAMESPACE).eventsStream;
    this.memberSpace = lockKey(`aggregator-members:${config.DB_SCHEMA}:${this.stream}`);
    this.partitionSpace = lockKey(`aggregator-partitions:${config.DB_SCHEMA}:${this.stream}`);
  }

  /**
   * Joins as `memberId` in a new session: takes the member lock and records which session holds it.
   * `onLost` hears when the session dies, and with it the membership and every lease.
   */
  async join(memberId: string, onLost: (error: Error) => void): Promise<Membership> {
    const session = await DatabaseSession.open(
      {
        url: this.config.DATABASE_URL,
        schema: this.config.DB_SCHEMA,
        applicationName: 'aggregator:membership',
      },
      onLost,
    );
    try {
      const memberKey = lockKey(memberId);
      const [lock] = await session.query<{ locked: boolean }>(
        `SELECT pg_try_advisory_lock($1, $2) AS locked`,
        [this.memberSpace, memberKey],
      );
      if (!lock.locked) throw new MemberIdInUseError(memberId);
      await session.query(
        `INSERT INTO aggregator_members (stream, member_id, member_key, backend_pid)
         VALUES ($1, $2, $3, pg_backend_pid())
         ON CONFLICT (stream, member_id) DO UPDATE
           SET member_key = excluded.member_key, backend_pid = excluded.backend_pid, joined_at = now()`,
        [this.stream, memberId, memberKey],
      );
      return new Membership(session, this.partitionSpace);
    } catch (error) {
      await session.close();
      throw error;
    }
  }

  /** The live members, by id, each with the partitions it holds; the same answer on every replica. */
  async view(): Promise<MemberView[]> {
    const rows: { member_id: string; joined_at: Date; partitions: string[] }[] = await this.dataSource.query(
      VIEW_SQL,
      [this.stream, this.memberSpace, this.partitionSpace],
    );
    return rows.map((row) => ({
      replica: row.member_id,
      joined_at: row.joined_at.toISOString(),
      partitions: row.partitions.map(Number),
    }));
  }

  /** Forgets the rows of members whose session is gone (killed replicas). */
  async sweepDeparted(): Promise<void> {
    await this.dataSource.query(
      `DELETE FROM aggregator_members m
       WHERE m.stream = $1 AND NOT EXISTS (
         SELECT 1 FROM pg_locks l
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.pid = m.backend_pid
           AND l.classid::bigint = $2 AND l.objid::bigint = m.member_key)`,
      [this.stream, this.memberSpace],
    );
  }
}

/** This replica's membership: its session and the partition leases taken in it. */
export class Membership {
  constructor(
    private readonly session: DatabaseSession,
    private readonly partitionSpace: number,
  ) {}

  get alive(): boolean {
    return this.session.alive;
  }

  /** Takes the lease of `partition` if no live replica holds it. */
  async tryLease(partition: number): Promise<boolean> {
    const [row] = await this.session.query<{ locked: boolean }>(
      `SELECT pg_try_advisory_lock($1, $2) AS locked`,
      [this.partitionSpace, partition],
    );
    return row.locked;
  }

  /** Gives the lease back, once the partition's ingestor has stopped. */
  async release(partition: number): Promise<void> {
    await this.session.query(`SELECT pg_advisory_unlock($1, $2)`, [this.partitionSpace, partition]);
  }

  /** Leaves: the session ends and the server drops the membership and every lease at once. */
  leave(): Promise<void> {
    return this.session.close();
  }
}
