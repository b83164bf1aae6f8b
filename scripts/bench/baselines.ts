import { randomBytes } from 'node:crypto';

import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { IngestEvent } from '@lib/contracts';
import pg from 'pg';

import { splitBatches } from '../publish/load.js';
import { type BenchContext, type BenchResult, type BenchSection, perSecond } from './bench-section.js';
import { makeLoad } from '@lib/testing';

/** The load every section of the pipeline family measures: 50k events, 30 % duplicates, 10 topics. */
export const PIPELINE_LOAD = { events: 50_000, dupRatio: 0.3, topics: 10 } as const;

const EVENTS_PER_MESSAGE = 50;
const PUBLISH_WINDOW = 256;
const INSERT_BATCH = 1_000;
/** Subjects the raw messages are spread over, like the pipeline's partitions. */
const SUBJECTS = 16;

/**
 * The raw rates of the two stores the pipeline sits between, measured the way the pipeline uses
 * them, so the end-to-end figure can be read as a share of what the hardware allows:
 * - JetStream: pipelined `js.publish` of messages carrying 50 events each (a JSON array, like the
 *   publisher's partition messages, each with a `Nats-Msg-Id`) into a fresh file stream.
 * - Postgres: `INSERT … SELECT unnest(…) ON CONFLICT DO NOTHING` in batches of 1,000 into a fresh
 *   table shaped like `events`, one connection, one batch after another.
 * Both encode their input before the clock starts and warm up on a few batches first.
 */
export const baselinesSection: BenchSection = {
  name: 'baselines',
  description: 'raw JetStream publish and raw Postgres batch insert rates',
  async run(context) {
    const { events, unique } = makeLoad(PIPELINE_LOAD.events, {
      topics: PIPELINE_LOAD.topics,
      dupRatio: PIPELINE_LOAD.dupRatio,
      prefix: 'bench',
    });
    const jetstreamResults = await measureJetStream(context, events);
    globalThis.gc?.();
    const postgresResults = await measurePostgres(context, events, unique);
    return [...jetstreamResults, ...postgresResults];
  },
};

async function measureJetStream(context: BenchContext, events: IngestEvent[]): Promise<BenchResult[]> {
  const tag = randomBytes(4).toString('hex');
  const stream = `BENCH_${tag}`;
  const subject = (i: number): string => `bench_${tag}.p.${i % SUBJECTS}`;
  const encoder = new TextEncoder();
  const bodies = splitBatches(events, EVENTS_PER_MESSAGE).map((chunk) =>
    encoder.encode(`[${chunk.map((e) => JSON.stringify(e)).join(',')}]`),
  );
  const averageBytes = bodies.reduce((sum, b) => sum + b.byteLength, 0) / bodies.length;

  const nc = await connect({ servers: context.natsUrl, name: 'bench-baselines' });
  context.defer('close the NATS connection', () => nc.close());
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  await jsm.streams.add({ name: stream, subjects: [`bench_${tag}.>`], storage: StorageType.File });
  context.defer(`delete stream ${stream}`, () => jsm.streams.delete(stream));
  context.log(`JetStream: stream ${stream}, ${bodies.length} messages of ~${Math.round(averageBytes)} bytes`);

  const publishAll = async (messages: Uint8Array[], idPrefix: string): Promise<void> => {
    for (let start = 0; start < messages.length; start += PUBLISH_WINDOW) {
      const window = messages.slice(start, start + PUBLISH_WINDOW);
      await Promise.all(
        window.map((body, i) => js.publish(subject(start + i), body, { msgID: `${idPrefix}-${start + i}` })),
      );
    }
  };
  await publishAll(bodies.slice(0, 32), 'warmup');
  const started = performance.now();
  await publishAll(bodies, 'run');
  const elapsed = performance.now() - started;
  const info = await jsm.streams.info(stream);
  if (info.state.messages !== bodies.length + 32) {
    throw new Error(`stream ${stream} holds ${info.state.messages} messages, expected ${bodies.length + 32}`);
  }
  const messagesPerSecond = perSecond(bodies.length, elapsed);
  context.log(`JetStream: ${Math.round(messagesPerSecond)} messages/s in ${elapsed.toFixed(0)} ms`);
  const note = `${bodies.length} messages × ${EVENTS_PER_MESSAGE} events (~${Math.round(averageBytes)} B), windows of ${PUBLISH_WINDOW}`;
  return [
    { name: 'baselines.jetstream_publish', value: messagesPerSecond, unit: 'msg/s', note },
    {
      name: 'baselines.jetstream_publish_events',
      value: perSecond(events.length, elapsed),
      unit: 'events/s',
    },
  ];
}

const INSERT_SQL = (table: string): string => `
  INSERT INTO ${table} (topic, event_id, ts, source, payload)
  SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::jsonb[])
  ON CONFLICT (topic, event_id) DO NOTHING`;

async function measurePostgres(
  context: BenchContext,
  events: IngestEvent[],
  unique: number,
): Promise<BenchResult[]> {
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  const table = `"${schema}".t`;
  const columns = splitBatches(events, INSERT_BATCH).map((batch) => [
    batch.map((e) => e.topic),
    batch.map((e) => e.event_id),
    batch.map((e) => e.timestamp),
    batch.map((e) => e.source),
    batch.map((e) => JSON.stringify(e.payload)),
  ]);

  const client = new pg.Client({
    connectionString: context.databaseUrl,
    application_name: 'bench-baselines',
  });
  await client.connect();
  context.defer('close the Postgres connection', () => client.end());
  await client.query(`CREATE SCHEMA "${schema}"`);
  context.defer(`drop schema ${schema}`, () => client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
  // the shape of the events table of the migration, with ts for "timestamp"
  await client.query(`
    CREATE TABLE ${table} (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      topic text NOT NULL,
      event_id text NOT NULL,
      ts timestamptz NOT NULL,
      source text NOT NULL,
      payload jsonb NOT NULL,
      ingested_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (topic, event_id)
    )`);
  await client.query(`CREATE INDEX ON ${table} (topic, id)`);
  context.log(`Postgres: schema ${schema}, ${columns.length} batches of ${INSERT_BATCH}`);

  const insert = { name: `bench-insert-${schema}`, text: INSERT_SQL(table) };
  for (const values of columns.slice(0, 2)) await client.query({ ...insert, values });
  await client.query(`TRUNCATE ${table}`);
  const started = performance.now();
  let inserted = 0;
  for (const values of columns) inserted += (await client.query({ ...insert, values })).rowCount ?? 0;
  const elapsed = performance.now() - started;
  if (inserted !== unique) throw new Error(`inserted ${inserted} rows, expected ${unique} unique events`);
  const rate = perSecond(events.length, elapsed);
  context.log(
    `Postgres: ${Math.round(rate)} events/s in ${elapsed.toFixed(0)} ms (${inserted} rows inserted)`,
  );
  return [
    {
      name: 'baselines.postgres_insert',
      value: rate,
      unit: 'events/s',
      note: `${events.length} events (${events.length - unique} duplicates) in batches of ${INSERT_BATCH}, one connection`,
    },
  ];
}
