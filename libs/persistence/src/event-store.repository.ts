import { Inject, Injectable } from '@nestjs/common';
import type { PipelineStats, StoredEvent } from '@lib/contracts';
import { DataSource } from 'typeorm';

/** What one committed batch changed. */
export interface StoredBatch {
  received: number;
  uniqueProcessed: number;
  duplicateDropped: number;
  conflicting: number;
}

/** The pipeline's counters as the store holds them (the `uptime` of `PipelineStats` is the process's). */
export type EventTotals = Omit<PipelineStats, 'uptime'>;

export interface EventPage {
  events: StoredEvent[];
  next_cursor: string | null;
}

/** Thrown when a partition's watermark is not where its owner left it: someone else consumed it. */
export class WatermarkMovedError extends Error {
  constructor(stream: string, partition: number, expected: number) {
    super(`watermark of ${stream}/${partition} moved away from ${expected}: another consumer owns it`);
    this.name = 'WatermarkMovedError';
  }
}

/** Topics listed by `GET /stats` at most; `topic_count` always has the full number. */
const TOPICS_LISTED = 1_000;

/*
 * Inserts a batch (a JSON array of events) set-based, counts per topic what was new, what was a
 * duplicate and which duplicates carried another payload, and adds that to the topic counters, in
 * one statement. `first_value` catches a key repeated inside the batch with a different payload; the
 * join on `events` (the snapshot before this statement) catches one stored earlier.
 */
const STORE_BATCH_SQL = `
WITH input AS (
  SELECT e.*, row_number() OVER w AS occurrence, first_value(e.payload) OVER w AS first_payload
  FROM ROWS FROM (
    jsonb_to_recordset($1::jsonb) AS (topic text, event_id text, "timestamp" timestamptz, source text, payload jsonb)
  ) WITH ORDINALITY AS e(topic, event_id, "timestamp", source, payload, ord)
  WINDOW w AS (PARTITION BY e.topic, e.event_id ORDER BY e.ord)
), inserted AS (
  INSERT INTO events (topic, event_id, "timestamp", source, payload)
  SELECT topic, event_id, "timestamp", source, payload FROM input ORDER BY ord
  ON CONFLICT (topic, event_id) DO NOTHING
  RETURNING topic, event_id
), per_topic AS (
  SELECT i.topic,
         count(*) AS received,
         count(*) FILTER (WHERE i.occurrence = 1 AND ins.event_id IS NOT NULL) AS unique_processed,
         count(*) FILTER (WHERE (ins.event_id IS NULL AND e.payload <> i.payload)
                             OR (ins.event_id IS NOT NULL AND i.occurrence > 1 AND i.payload <> i.first_payload)) AS conflicting
  FROM input i
  LEFT JOIN inserted ins ON ins.topic = i.topic AND ins.event_id = i.event_id
  LEFT JOIN events e ON ins.event_id IS NULL AND e.topic = i.topic AND e.event_id = i.event_id
  GROUP BY i.topic
), upsert AS (
  INSERT INTO topic_stats AS s (topic, received, unique_processed, duplicate_dropped, conflicting_duplicates)
  SELECT topic, received, unique_processed, received - unique_processed, conflicting FROM per_topic
  ON CONFLICT (topic) DO UPDATE SET
    received = s.received + excluded.received,
    unique_processed = s.unique_processed + excluded.unique_processed,
    duplicate_dropped = s.duplicate_dropped + excluded.duplicate_dropped,
    conflicting_duplicates = s.conflicting_duplicates + excluded.conflicting_duplicates,
    updated_at = now()
  RETURNING 1
)
SELECT coalesce(sum(received), 0)::int AS received,
       coalesce(sum(unique_processed), 0)::int AS unique_processed,
       coalesce(sum(conflicting), 0)::int AS conflicting
FROM per_topic`;

/**
 * The event store shared by the aggregator (writes) and the publisher (reads): rows, counters and
 * the per-partition watermark that makes counting exact under redelivery.
 */
@Injectable()
export class EventStoreRepository {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  /** Makes sure the partition has an offset row and returns its watermark (last applied stream sequence). */
  async claimPartition(stream: string, partition: number): Promise<number> {
    const rows: { watermark: string }[] = await this.dataSource.query(
      `INSERT INTO partition_offsets (stream, partition) VALUES ($1, $2)
       ON CONFLICT (stream, partition) DO UPDATE SET updated_at = now()
       RETURNING watermark`,
      [stream, partition],
    );
    return Number(rows[0].watermark);
  }

  /**
   * Commits a batch of one partition at once: its events (a JSON array, possibly empty), the counters,
   * the dead letters it set aside, and the watermark moved from `expectedWatermark` to `watermark`.
   * Throws `WatermarkMovedError`, committing nothing, when the watermark is not where the caller left it.
   */
  async storeBatch(args: {
    stream: string;
    partition: number;
    expectedWatermark: number;
    watermark: number;
    eventsJson: string;
    deadLettered: number;
  }): Promise<StoredBatch> {
    return this.dataSource.transaction(async (manager) => {
      // structured result: TypeORM answers a plain UPDATE with [rows, count] otherwise
      const moved: { affected?: number } = await manager.queryRunner!.query(
        `UPDATE partition_offsets
         SET watermark = $4, dead_lettered = dead_lettered + $5, updated_at = now()
         WHERE stream = $1 AND partition = $2 AND watermark = $3`,
        [args.stream, args.partition, args.expectedWatermark, args.watermark, args.deadLettered],
        true,
      );
      if (moved.affected !== 1)
        throw new WatermarkMovedError(args.stream, args.partition, args.expectedWatermark);
      if (args.eventsJson === '[]')
        return { received: 0, uniqueProcessed: 0, duplicateDropped: 0, conflicting: 0 };
      const [row]: { received: number; unique_processed: number; conflicting: number }[] =
        await manager.query(STORE_BATCH_SQL, [args.eventsJson]);
      return {
        received: row.received,
        uniqueProcessed: row.unique_processed,
        duplicateDropped: row.received - row.unique_processed,
        conflicting: row.conflicting,
      };
    });
  }

  /** The pipeline's counters, summed over topics and partitions. */
  async getStatistics(): Promise<EventTotals> {
    const [totals]: Record<string, string | null>[] = await this.dataSource.query(`
      SELECT coalesce(sum(received), 0) AS received,
             coalesce(sum(unique_processed), 0) AS unique_processed,
             coalesce(sum(duplicate_dropped), 0) AS duplicate_dropped,
             coalesce(sum(conflicting_duplicates), 0) AS conflicting_duplicates,
             count(*) AS topic_count,
             (SELECT coalesce(sum(dead_lettered), 0) FROM partition_offsets) AS dead_lettered
      FROM topic_stats`);
    const topics: { topic: string }[] = await this.dataSource.query(
      `SELECT topic FROM topic_stats ORDER BY topic LIMIT $1`,
      [TOPICS_LISTED],
    );
    return {
      received: Number(totals.received),
      unique_processed: Number(totals.unique_processed),
      duplicate_dropped: Number(totals.duplicate_dropped),
      conflicting_duplicates: Number(totals.conflicting_duplicates),
      dead_lettered: Number(totals.dead_lettered),
      topic_count: Number(totals.topic_count),
      topics: topics.map((t) => t.topic),
    };
  }

  /** Stored events in ingestion order, optionally of one topic, after `afterSeq`. */
  async listEvents(query: { topic?: string; limit: number; afterSeq: string }): Promise<StoredEvent[]> {
    const params: unknown[] = [query.afterSeq, query.limit];
    let where = 'id > $1';
    if (query.topic !== undefined) {
      params.push(query.topic);
      where += ' AND topic = $3';
    }
    const rows: (Omit<StoredEvent, 'timestamp' | 'ingested_at'> & { timestamp: Date; ingested_at: Date })[] =
      await this.dataSource.query(
        `SELECT id::text AS seq, topic, event_id, "timestamp", source, payload, ingested_at
         FROM events WHERE ${where} ORDER BY id LIMIT $2`,
        params,
      );
    return rows.map((row) => ({
      ...row,
      timestamp: row.timestamp.toISOString(),
      ingested_at: row.ingested_at.toISOString(),
    }));
  }
}
