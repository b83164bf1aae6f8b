import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { Logger } from '@nestjs/common';
import type { IngestEvent } from '@lib/contracts';
import { CleanupStack, dropSchema, queryDatabase, TEST_DATABASE_URL, uniqueName } from '@lib/testing';
import type { DataSource } from 'typeorm';

import { createDataSource, type DatabaseOptions, MIGRATIONS } from './data-source.js';
import { EventStoreRepository, WatermarkMovedError } from './event-store.repository.js';
import { migrate } from './migrate.js';

/** A migrated schema of its own, the repository on it, and what must be undone after the test. */
interface Store {
  schema: string;
  dataSource: DataSource;
  repository: EventStoreRepository;
}

interface TopicStatsRow {
  topic: string;
  received: string;
  unique_processed: string;
  duplicate_dropped: string;
  conflicting_duplicates: string;
}

const cleanups = new CleanupStack();

function databaseOptions(schema: string): DatabaseOptions {
  return { url: TEST_DATABASE_URL, schema, poolSize: 2, applicationName: 'spec' };
}

/** Creates a unique schema, runs the real migrations on it and opens the repository; undone after the test. */
async function openStore(): Promise<Store> {
  const schema = uniqueName('evstore');
  cleanups.defer(() => dropSchema(schema));
  await migrate(databaseOptions(schema));
  const dataSource = createDataSource(databaseOptions(schema));
  await dataSource.initialize();
  cleanups.defer(() => dataSource.destroy());
  return { schema, dataSource, repository: new EventStoreRepository(dataSource) };
}

let counter = 0;

/** A valid event of `topic`; `event_id` is unique per call unless given. */
function event(topic: string, overrides: Partial<IngestEvent> = {}): IngestEvent {
  counter += 1;
  return {
    topic,
    event_id: `evt-${counter}`,
    timestamp: new Date(Date.UTC(2025, 0, 1, 0, 0, counter % 60)).toISOString(),
    source: 'spec',
    payload: { n: counter },
    ...overrides,
  };
}

async function topicStats(schema: string): Promise<Record<string, Omit<TopicStatsRow, 'topic'>>> {
  const rows = await queryDatabase<TopicStatsRow>(
    `SELECT topic, received, unique_processed, duplicate_dropped, conflicting_duplicates
     FROM "${schema}".topic_stats ORDER BY topic`,
  );
  return Object.fromEntries(rows.map(({ topic, ...counters }) => [topic, counters]));
}

async function countEvents(schema: string): Promise<number> {
  const [row] = await queryDatabase<{ count: string }>(`SELECT count(*) FROM "${schema}".events`);
  return Number(row.count);
}

beforeEach(() => {
  // migrations log each applied step; the spec checks them itself
  Logger.overrideLogger(['error']);
});

afterEach(() => cleanups.runAll());

describe(EventStoreRepository.name, () => {
  describe('claimPartition', () => {
    it('returns 0 for a partition never seen, then the committed watermark', async () => {
      const { repository } = await openStore();
      const stream = uniqueName('stream');

      expect(await repository.claimPartition(stream, 3)).toBe(0);
      expect(await repository.claimPartition(stream, 3)).toBe(0);
      await repository.storeBatch({
        stream,
        partition: 3,
        expectedWatermark: 0,
        watermark: 42,
        eventsJson: JSON.stringify([event('claim.a')]),
        deadLettered: 0,
      });

      expect(await repository.claimPartition(stream, 3)).toBe(42);
      expect(await repository.claimPartition(stream, 4)).toBe(0);
      expect(await repository.claimPartition(`${stream}-other`, 3)).toBe(0);
    });
  });

  describe('storeBatch', () => {
    it('counts received, unique, duplicate and conflicting events of a batch with in-batch duplicates', async () => {
      const { repository, schema } = await openStore();
      const stream = uniqueName('stream');
      await repository.claimPartition(stream, 0);
      const first = event('orders', { event_id: 'o-1', payload: { amount: 1 } });
      const second = event('orders', { event_id: 'o-2', payload: { amount: 2 } });
      const batch = [
        first,
        second,
        { ...first }, // same key, same payload: a plain duplicate
        { ...second, payload: { amount: 99 } }, // same key, another payload: a conflicting duplicate
        event('payments', { event_id: 'o-1' }), // same event_id in another topic: another event
        { ...second }, // same as the first occurrence again: a plain duplicate
      ];

      const stored = await repository.storeBatch({
        stream,
        partition: 0,
        expectedWatermark: 0,
        watermark: 6,
        eventsJson: JSON.stringify(batch),
        deadLettered: 0,
      });

      expect(stored).toEqual({ received: 6, uniqueProcessed: 3, duplicateDropped: 3, conflicting: 1 });
      expect(await topicStats(schema)).toEqual({
        orders: { received: '5', unique_processed: '2', duplicate_dropped: '3', conflicting_duplicates: '1' },
        payments: {
          received: '1',
          unique_processed: '1',
          duplicate_dropped: '0',
          conflicting_duplicates: '0',
        },
      });
      // the first occurrence is the one stored
      const rows = await repository.listEvents({ topic: 'orders', limit: 10, afterSeq: '0' });
      expect(rows.map((row) => [row.event_id, row.payload])).toEqual([
        ['o-1', { amount: 1 }],
        ['o-2', { amount: 2 }],
      ]);
    });

    it('counts duplicates of events stored by earlier batches, conflicting when the payload differs', async () => {
      const { repository, schema } = await openStore();
      const stream = uniqueName('stream');
      await repository.claimPartition(stream, 1);
      const a = event('logs', { payload: { level: 'info', text: 'a' } });
      const b = event('logs', { payload: { level: 'warn' } });
      await repository.storeBatch({
        stream,
        partition: 1,
        expectedWatermark: 0,
        watermark: 1,
        eventsJson: JSON.stringify([a, b]),
        deadLettered: 0,
      });
      const c = event('logs');

      const stored = await repository.storeBatch({
        stream,
        partition: 1,
        expectedWatermark: 1,
        watermark: 2,
        eventsJson: JSON.stringify([
          { ...a, payload: { text: 'a', level: 'info' } }, // same payload, other key order: not a conflict
          { ...b, payload: { level: 'error' } }, // stored earlier with another payload
          c,
          { ...c }, // in-batch duplicate of a new event
          { ...b, payload: { level: 'error' } }, // still differs from the stored one
        ]),
        deadLettered: 0,
      });

      expect(stored).toEqual({ received: 5, uniqueProcessed: 1, duplicateDropped: 4, conflicting: 2 });
      expect(await topicStats(schema)).toEqual({
        logs: { received: '7', unique_processed: '3', duplicate_dropped: '4', conflicting_duplicates: '2' },
      });
      expect(await countEvents(schema)).toBe(3);
      // a duplicate never overwrites what was stored first
      const [storedB] = await repository.listEvents({ topic: 'logs', limit: 1, afterSeq: '1' });
      expect(storedB).toMatchObject({ event_id: b.event_id, payload: { level: 'warn' } });
    });

    it('sums the topic counters and the dead letters of every partition in getStatistics', async () => {
      const { repository } = await openStore();
      const stream = uniqueName('stream');
      await repository.claimPartition(stream, 0);
      await repository.claimPartition(stream, 1);
      const x = event('stats.x');
      await repository.storeBatch({
        stream,
        partition: 0,
        expectedWatermark: 0,
        watermark: 3,
        eventsJson: JSON.stringify([x, { ...x, payload: { other: true } }, event('stats.y')]),
        deadLettered: 1,
      });
      await repository.storeBatch({
        stream,
        partition: 1,
        expectedWatermark: 0,
        watermark: 2,
        eventsJson: JSON.stringify([event('stats.z'), { ...x }]),
        deadLettered: 2,
      });

      expect(await repository.getStatistics()).toEqual({
        received: 5,
        unique_processed: 3,
        duplicate_dropped: 2,
        conflicting_duplicates: 1,
        dead_lettered: 3,
        topic_count: 3,
        topics: ['stats.x', 'stats.y', 'stats.z'],
      });
    });

    it('answers zeros from getStatistics before anything is stored', async () => {
      const { repository } = await openStore();

      expect(await repository.getStatistics()).toEqual({
        received: 0,
        unique_processed: 0,
        duplicate_dropped: 0,
        conflicting_duplicates: 0,
        dead_lettered: 0,
        topic_count: 0,
        topics: [],
      });
    });

    it('throws WatermarkMovedError for a stale expected watermark and commits nothing', async () => {
      const { repository, schema } = await openStore();
      const stream = uniqueName('stream');
      await repository.claimPartition(stream, 0);
      await repository.storeBatch({
        stream,
        partition: 0,
        expectedWatermark: 0,
        watermark: 10,
        eventsJson: JSON.stringify([event('stale')]),
        deadLettered: 0,
      });
      const statsBefore = await repository.getStatistics();
      const topicStatsBefore = await topicStats(schema);

      const attempt = repository.storeBatch({
        stream,
        partition: 0,
        expectedWatermark: 5,
        watermark: 12,
        eventsJson: JSON.stringify([event('stale'), event('stale.new')]),
        deadLettered: 1,
      });

      await expect(attempt).rejects.toThrow(WatermarkMovedError);
      await expect(attempt).rejects.toThrow(`watermark of ${stream}/0 moved away from 5`);
      expect(await repository.claimPartition(stream, 0)).toBe(10);
      expect(await repository.getStatistics()).toEqual(statsBefore);
      expect(await topicStats(schema)).toEqual(topicStatsBefore);
      expect(await countEvents(schema)).toBe(1);
    });

    it('throws WatermarkMovedError for a partition that was never claimed', async () => {
      const { repository, schema } = await openStore();

      await expect(
        repository.storeBatch({
          stream: uniqueName('stream'),
          partition: 0,
          expectedWatermark: 0,
          watermark: 1,
          eventsJson: JSON.stringify([event('unclaimed')]),
          deadLettered: 0,
        }),
      ).rejects.toThrow(WatermarkMovedError);
      expect(await countEvents(schema)).toBe(0);
    });

    it('moves the watermark and adds the dead letters for an empty batch', async () => {
      const { repository, schema } = await openStore();
      const stream = uniqueName('stream');
      await repository.claimPartition(stream, 2);

      const stored = await repository.storeBatch({
        stream,
        partition: 2,
        expectedWatermark: 0,
        watermark: 7,
        eventsJson: '[]',
        deadLettered: 1,
      });

      expect(stored).toEqual({ received: 0, uniqueProcessed: 0, duplicateDropped: 0, conflicting: 0 });
      expect(await repository.claimPartition(stream, 2)).toBe(7);
      expect(await repository.getStatistics()).toMatchObject({
        received: 0,
        dead_lettered: 1,
        topic_count: 0,
      });
      expect(await countEvents(schema)).toBe(0);
    });

    it('commits nothing when an event breaks the store contract', async () => {
      const { repository, schema } = await openStore();
      const stream = uniqueName('stream');
      await repository.claimPartition(stream, 0);

      await expect(
        repository.storeBatch({
          stream,
          partition: 0,
          expectedWatermark: 0,
          watermark: 2,
          eventsJson: JSON.stringify([event('contract.ok'), event('contract bad topic')]),
          deadLettered: 0,
        }),
      ).rejects.toThrow(/events_topic_check/);
      expect(await repository.claimPartition(stream, 0)).toBe(0);
      expect(await countEvents(schema)).toBe(0);
      expect(await topicStats(schema)).toEqual({});
    });
  });

  describe('listEvents', () => {
    /** Stores `events` as one batch on a fresh partition. */
    async function storeAll(repository: EventStoreRepository, events: IngestEvent[]): Promise<void> {
      const stream = uniqueName('stream');
      await repository.claimPartition(stream, 0);
      await repository.storeBatch({
        stream,
        partition: 0,
        expectedWatermark: 0,
        watermark: events.length,
        eventsJson: JSON.stringify(events),
        deadLettered: 0,
      });
    }

    it('returns stored events in ingestion order with increasing seq', async () => {
      const { repository } = await openStore();
      const events = [event('list.b'), event('list.a'), event('list.c'), event('list.a')];
      await storeAll(repository, events.slice(0, 2));
      await storeAll(repository, events.slice(2));

      const listed = await repository.listEvents({ limit: 100, afterSeq: '0' });

      expect(listed.map((row) => row.event_id)).toEqual(events.map((e) => e.event_id));
      const seqs = listed.map((row) => BigInt(row.seq));
      expect([...seqs].sort((l, r) => (l < r ? -1 : l > r ? 1 : 0))).toEqual(seqs);
      expect(new Set(seqs).size).toBe(seqs.length);
      expect(listed[0]).toEqual({
        seq: expect.any(String),
        topic: 'list.b',
        event_id: events[0].event_id,
        timestamp: events[0].timestamp,
        source: 'spec',
        payload: events[0].payload,
        ingested_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      });
    });

    it('filters by topic', async () => {
      const { repository } = await openStore();
      const events = [event('filter.a'), event('filter.b'), event('filter.a'), event('filter.ab')];
      await storeAll(repository, events);

      const listed = await repository.listEvents({ topic: 'filter.a', limit: 100, afterSeq: '0' });

      expect(listed.map((row) => row.event_id)).toEqual([events[0].event_id, events[2].event_id]);
      expect(await repository.listEvents({ topic: 'filter.none', limit: 100, afterSeq: '0' })).toEqual([]);
    });

    it('pages with limit and afterSeq until nothing is left', async () => {
      const { repository } = await openStore();
      const events = Array.from({ length: 5 }, () => event('page'));
      await storeAll(repository, events);

      const pages: string[][] = [];
      let afterSeq = '0';
      for (;;) {
        const page = await repository.listEvents({ topic: 'page', limit: 2, afterSeq });
        if (page.length === 0) break;
        pages.push(page.map((row) => row.event_id));
        afterSeq = page[page.length - 1].seq;
      }

      const ids = events.map((e) => e.event_id);
      expect(pages).toEqual([ids.slice(0, 2), ids.slice(2, 4), ids.slice(4)]);
    });
  });
});

describe(migrate.name, () => {
  it('applies every migration once when two replicas migrate a fresh schema together', async () => {
    const schema = uniqueName('migrate');
    try {
      const results = await Promise.all([migrate(databaseOptions(schema)), migrate(databaseOptions(schema))]);

      const names = MIGRATIONS.map((migration) => migration.name);
      expect([...results].sort((l, r) => r.length - l.length)).toEqual([names, []]);
      const applied = await queryDatabase<{ name: string }>(
        `SELECT name FROM "${schema}".migrations ORDER BY id`,
      );
      expect(applied.map((row) => row.name)).toEqual(names);
      const tables = await queryDatabase<{ table_name: string }>(
        `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`,
        [schema],
      );
      // every service's tables (and the lock service's view), from the one migration history
      expect(tables.map((row) => row.table_name)).toEqual([
        'aggregator_members',
        'cache_entries',
        'cache_members',
        'events',
        'lock_audit',
        'lock_live_requests',
        'lock_requests',
        'lock_resources',
        'migrations',
        'partition_offsets',
        'topic_stats',
      ]);
    } finally {
      await dropSchema(schema);
    }
  });

  it('finds nothing to do on a schema already migrated', async () => {
    const { schema } = await openStore();

    expect(await migrate(databaseOptions(schema))).toEqual([]);
  });
});
