import { setTimeout as delay } from 'node:timers/promises';

import { afterEach, describe, expect, it } from '@jest/globals';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { type IngestEvent, messagingNames, type PipelineStats } from '@lib/contracts';
import {
  CleanupStack,
  deleteStreams,
  dropSchema,
  freePort,
  makeLoad,
  NatsServerProcess,
  postBatches,
  PostgresServerProcess,
  queryDatabase,
  ServiceProcess,
  TEST_DATABASE_URL,
  TEST_NATS_URL,
  uniqueName,
  waitFor,
} from '@lib/testing';

import type { AggregatorStats } from '../src/stats/stats.controller.js';

/** Where one test's pipeline lives: its own streams (namespace) and tables (schema). */
interface PipelineEnv {
  natsUrl: string;
  databaseUrl: string;
  namespace: string;
  schema: string;
}

/** Cleanups registered by the running test, undone in reverse order after it, whatever happened. */
const cleanups = new CleanupStack();
/** Every service process the running test started, for logs when it fails. */
const services: ServiceProcess[] = [];

afterEach(async () => {
  try {
    await cleanups.runAll();
  } finally {
    services.splice(0);
  }
});

/** Runs a test body; when it fails, the output of every service it started is added to the error. */
async function withServiceLogs(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    const logs = services.map((s) => `--- ${s.app} (pid ${s.pid}) ---\n${s.logs()}`).join('\n');
    if (error instanceof Error) {
      error.message += `\n\nservice output:\n${logs}`;
      throw error;
    }
    throw new Error(`${String(error)}\n\nservice output:\n${logs}`);
  }
}

/** A fresh namespace and schema on the given NATS and Postgres, removed after the test. */
function pipelineOn(natsUrl: string, databaseUrl: string): PipelineEnv {
  const env = { natsUrl, databaseUrl, namespace: uniqueName('fail'), schema: uniqueName('fail') };
  cleanups.defer(() => deleteStreams(env.namespace, natsUrl));
  cleanups.defer(() => dropSchema(env.schema, databaseUrl));
  return env;
}

/** The environment of one service of the pipeline on its own free port. */
async function serviceEnv(pipeline: PipelineEnv): Promise<Record<string, string>> {
  return {
    PORT: String(await freePort()),
    NATS_URL: pipeline.natsUrl,
    NATS_NAMESPACE: pipeline.namespace,
    DATABASE_URL: pipeline.databaseUrl,
    DB_SCHEMA: pipeline.schema,
    LOG_LEVEL: 'warn',
  };
}

/** Starts a service process that is killed after the test. */
async function startService(
  app: ServiceProcess['app'],
  env: Record<string, string>,
): Promise<ServiceProcess> {
  const service = new ServiceProcess(app, env);
  services.push(service);
  cleanups.defer(() => service.kill('SIGKILL'));
  return service.start();
}

async function startPipeline(
  pipeline: PipelineEnv,
): Promise<{ publisher: ServiceProcess; aggregator: ServiceProcess }> {
  const [publisherEnv, aggregatorEnv] = [await serviceEnv(pipeline), await serviceEnv(pipeline)];
  // one after the other: both run the migrations at start-up
  const publisher = await startService('publisher', publisherEnv);
  const aggregator = await startService('aggregator', aggregatorEnv);
  return { publisher, aggregator };
}

/** `GET /stats` of the aggregator: the counters of record plus the replica (`host:pid`) answering. */
function getStats(aggregator: ServiceProcess): Promise<AggregatorStats> {
  return getJson<AggregatorStats>(`${aggregator.url}/stats`);
}

/** `GET /stats` of the publisher: the same counters, read from the same tables. */
function getPublisherStats(publisher: ServiceProcess): Promise<PipelineStats> {
  return getJson<PipelineStats>(`${publisher.url}/stats`);
}

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url);
  if (response.status !== 200)
    throw new Error(`GET ${url} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

/**
 * Partitions whose newest message in the events stream is above the partition's watermark, i.e. not
 * committed yet. Messages leave the work-queue stream only when acked, and acked only after their
 * commit, so none listed means every published message is in Postgres (an ack lost in a broker
 * restart only delays the removal of a committed message by the ack wait; it is not work left).
 */
async function uncommittedPartitions(pipeline: PipelineEnv, partitions: number): Promise<string[]> {
  const names = messagingNames(pipeline.namespace);
  const offsets = await queryDatabase<{ partition: number; watermark: string }>(
    `SELECT partition, watermark FROM "${pipeline.schema}".partition_offsets WHERE stream = $1`,
    [names.eventsStream],
    pipeline.databaseUrl,
  );
  const watermarks = new Map(offsets.map((o) => [o.partition, Number(o.watermark)]));
  const nc = await connect({ servers: pipeline.natsUrl, reconnect: false });
  try {
    const jsm = await jetstreamManager(nc);
    const behind: string[] = [];
    for (let partition = 0; partition < partitions; partition++) {
      const last = await jsm.streams.getMessage(names.eventsStream, {
        last_by_subj: names.eventsSubject(partition),
      });
      const watermark = watermarks.get(partition) ?? 0;
      if (last && last.seq > watermark)
        behind.push(`p${partition}: stream seq ${last.seq} > watermark ${watermark}`);
    }
    return behind;
  } finally {
    await nc.close();
  }
}

/**
 * Waits until the aggregator has committed every message published so far and its counters add up;
 * they are final then (what is left in the stream is at most committed messages awaiting their ack).
 * Call it once every publish has been answered.
 */
function waitForDrain(
  pipeline: PipelineEnv,
  aggregator: ServiceProcess,
  timeoutMs = 60_000,
): Promise<AggregatorStats> {
  return waitFor(
    async () => {
      const { partitions } = await getStats(aggregator);
      const behind = await uncommittedPartitions(pipeline, partitions.count);
      if (behind.length > 0) throw new Error(`not committed yet: ${behind.join(', ')}`);
      const stats = await getStats(aggregator);
      return stats.received === stats.unique_processed + stats.duplicate_dropped && stats;
    },
    { timeoutMs, description: 'every published message committed to Postgres' },
  );
}

async function storedRows(pipeline: PipelineEnv): Promise<{ rows: number; keys: number }> {
  const [counts] = await queryDatabase<{ rows: number; keys: number }>(
    `SELECT count(*)::int AS rows, count(DISTINCT (topic, event_id))::int AS keys FROM "${pipeline.schema}".events`,
    [],
    pipeline.databaseUrl,
  );
  return counts;
}

/** One batch of a background load and the status of each attempt at posting it. */
interface BatchOutcome {
  events: IngestEvent[];
  statuses: number[];
}

/**
 * Posts events in batches in the background, `concurrency` requests in flight, so a test can break
 * things meanwhile and watch progress. A 503 is retried after its `Retry-After`, `maxAttempts` times
 * at most; any other answer is final. `stop()` (run after every test) abandons what is left.
 */
class BackgroundLoad {
  readonly outcomes: BatchOutcome[] = [];
  readonly done: Promise<void>;
  acceptedBatches = 0;
  finished = false;
  private readonly aborted = new AbortController();

  constructor(
    private readonly publisher: ServiceProcess,
    events: IngestEvent[],
    {
      batchSize,
      concurrency,
      maxAttempts = 1,
    }: { batchSize: number; concurrency: number; maxAttempts?: number },
  ) {
    const batches: IngestEvent[][] = [];
    for (let i = 0; i < events.length; i += batchSize) batches.push(events.slice(i, i + batchSize));
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < batches.length && !this.aborted.signal.aborted) {
        const outcome: BatchOutcome = { events: batches[next++], statuses: [] };
        this.outcomes.push(outcome);
        await this.post(outcome, maxAttempts);
      }
    };
    this.done = Promise.all(Array.from({ length: concurrency }, worker)).then(() => {
      this.finished = true;
    });
    this.done.catch(() => undefined); // awaited by the test or by stop()
    cleanups.defer(() => this.stop());
  }

  get statuses(): number[] {
    return this.outcomes.flatMap((o) => o.statuses);
  }

  /** The events of every batch that was finally answered 202. */
  get acceptedEvents(): IngestEvent[] {
    return this.outcomes.filter((o) => o.statuses.at(-1) === 202).flatMap((o) => o.events);
  }

  async stop(): Promise<void> {
    this.aborted.abort();
    await this.done.catch(() => undefined);
  }

  private async post(outcome: BatchOutcome, maxAttempts: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const response = await fetch(`${this.publisher.url}/publish`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ events: outcome.events }),
        signal: this.aborted.signal,
      });
      await response.arrayBuffer();
      outcome.statuses.push(response.status);
      if (response.status === 202) {
        this.acceptedBatches += 1;
        return;
      }
      if (response.status !== 503 || attempt >= maxAttempts) return;
      // the server says when to come back; honouring it is the client's part of the protocol
      const retryAfterSeconds = Number(response.headers.get('retry-after') ?? '1');
      await delay(retryAfterSeconds * 1_000, undefined, { signal: this.aborted.signal });
    }
  }
}

describe('exactly-once under failure', () => {
  it(
    'keeps exact counts when the aggregator is killed with SIGKILL mid-load',
    () =>
      withServiceLogs(async () => {
        const pipeline = pipelineOn(TEST_NATS_URL, TEST_DATABASE_URL);
        const { publisher, aggregator } = await startPipeline(pipeline);
        const load = makeLoad(20_000, { dupRatio: 0.3, topics: 10 });
        expect(load.unique).toBe(14_000);

        const posting = new BackgroundLoad(publisher, load.events, { batchSize: 500, concurrency: 4 });
        const beforeKill = await waitFor(
          async () => {
            const stats = await getStats(aggregator);
            return stats.received > 0 && stats;
          },
          { intervalMs: 20, description: 'the aggregator to store its first events' },
        );
        await aggregator.kill('SIGKILL');
        expect(beforeKill.received).toBeLessThan(load.events.length);

        // the publisher keeps accepting while no aggregator runs
        const acceptedAtKill = posting.acceptedBatches;
        await waitFor(() => posting.acceptedBatches >= acceptedAtKill + 4 || posting.finished, {
          description: 'more batches accepted with the aggregator down',
        });
        const successor = await startService('aggregator', aggregator.env);
        await posting.done;

        const stats = await waitForDrain(pipeline, successor);
        expect(posting.statuses).toEqual(Array.from({ length: 40 }, () => 202));
        expect(stats).toMatchObject({
          received: 20_000,
          unique_processed: load.unique,
          duplicate_dropped: 20_000 - load.unique,
          dead_lettered: 0,
        });
        expect(await storedRows(pipeline)).toEqual({ rows: 14_000, keys: 14_000 });
      }),
    180_000,
  );

  it(
    'finishes its batch in hand on SIGTERM mid-load, exits 0, and loses or repeats nothing',
    () =>
      withServiceLogs(async () => {
        const pipeline = pipelineOn(TEST_NATS_URL, TEST_DATABASE_URL);
        const { publisher, aggregator } = await startPipeline(pipeline);
        const load = makeLoad(20_000, { dupRatio: 0.3, topics: 10, prefix: 'term' });

        const posting = new BackgroundLoad(publisher, load.events, { batchSize: 500, concurrency: 4 });
        await waitFor(async () => (await getStats(aggregator)).received > 0, {
          intervalMs: 20,
          description: 'the aggregator to store its first events',
        });
        const stoppedAt = performance.now();
        expect(await aggregator.stop()).toBe(0);
        expect(performance.now() - stoppedAt).toBeLessThan(10_000); // SHUTDOWN_TIMEOUT_MS
        expect((await getPublisherStats(publisher)).received).toBeLessThan(load.events.length);

        const successor = await startService('aggregator', aggregator.env);
        await posting.done;
        const stats = await waitForDrain(pipeline, successor);
        expect(posting.statuses.every((status) => status === 202)).toBe(true);
        expect(stats).toMatchObject({
          received: 20_000,
          unique_processed: load.unique,
          duplicate_dropped: 20_000 - load.unique,
          dead_lettered: 0,
        });
        expect(await storedRows(pipeline)).toEqual({ rows: load.unique, keys: load.unique });
      }),
    180_000,
  );

  it(
    'stores every event answered 202 across a NATS restart',
    () =>
      withServiceLogs(async () => {
        const nats = new NatsServerProcess();
        cleanups.defer(() => nats.dispose());
        await nats.start();
        const pipeline = pipelineOn(nats.url, TEST_DATABASE_URL);
        const { publisher, aggregator } = await startPipeline(pipeline);
        const load = makeLoad(10_000, { dupRatio: 0, topics: 10, prefix: 'restart' });

        const posting = new BackgroundLoad(publisher, load.events, {
          batchSize: 250,
          concurrency: 2,
          maxAttempts: 10,
        });
        await waitFor(() => posting.acceptedBatches >= 5, { description: 'the first batches accepted' });
        expect(posting.finished).toBe(false);
        await nats.restart();
        await posting.done;

        const statuses = posting.statuses;
        expect(statuses.filter((s) => s !== 202 && s !== 503)).toEqual([]);
        expect(posting.acceptedBatches).toBe(40); // the publisher recovers: every batch is taken in the end

        const stats = await waitForDrain(pipeline, aggregator);
        const acceptedIds = posting.acceptedEvents.map((e) => e.event_id);
        const stored = await queryDatabase<{ event_id: string }>(
          `SELECT event_id FROM "${pipeline.schema}".events WHERE event_id = ANY($1::text[])`,
          [acceptedIds],
          pipeline.databaseUrl,
        );
        const storedIds = new Set(stored.map((row) => row.event_id));
        expect(acceptedIds.filter((id) => !storedIds.has(id))).toEqual([]);

        const rows = await storedRows(pipeline);
        expect(rows.rows).toBe(rows.keys);
        expect(stats.received).toBe(stats.unique_processed + stats.duplicate_dropped);
        expect(stats.unique_processed).toBe(rows.rows);
        expect(stats.dead_lettered).toBe(0);
      }),
    180_000,
  );

  it(
    'resumes by itself after Postgres is stopped for 10 s, with no loss and no duplicate',
    () =>
      withServiceLogs(async () => {
        const postgres = new PostgresServerProcess();
        cleanups.defer(() => postgres.dispose());
        await postgres.start();
        const pipeline = pipelineOn(TEST_NATS_URL, postgres.url);
        const { publisher, aggregator } = await startPipeline(pipeline);
        const load = makeLoad(10_000, { dupRatio: 0.3, topics: 10, prefix: 'pgdown' });

        const posting = new BackgroundLoad(publisher, load.events, { batchSize: 250, concurrency: 2 });
        const beforeOutage = await waitFor(
          async () => {
            const stats = await getStats(aggregator);
            return stats.received > 0 && stats;
          },
          { intervalMs: 20, description: 'the aggregator to store its first events' },
        );
        await postgres.stop();
        const outageStarted = performance.now();
        expect(beforeOutage.received).toBeLessThan(load.events.length);
        // while the database is down the services say so: 503 with Retry-After, never a 500
        const stats503 = await fetch(`${aggregator.url}/stats`);
        expect(stats503.status).toBe(503);
        expect(stats503.headers.get('retry-after')).not.toBeNull();
        const health = await fetch(`${publisher.url}/health`);
        expect(health.status).toBe(503);
        expect(await health.json()).toMatchObject({ error: { postgres: { status: 'down' } } });
        // the outage itself is what is under test, so its length is a fixed time, not a wait for a condition
        await delay(10_000 - (performance.now() - outageStarted));
        await postgres.start();
        await posting.done;

        const stats = await waitForDrain(pipeline, aggregator);
        expect(posting.statuses).toEqual(Array.from({ length: 40 }, () => 202));
        expect(stats.replica).toBe(beforeOutage.replica); // the same process: it rode out the outage
        expect(stats.replica.endsWith(`:${aggregator.pid}`)).toBe(true);
        expect(stats).toMatchObject({
          received: 10_000,
          unique_processed: load.unique,
          duplicate_dropped: 10_000 - load.unique,
          dead_lettered: 0,
        });
        expect(await storedRows(pipeline)).toEqual({ rows: load.unique, keys: load.unique });
      }),
    180_000,
  );

  it(
    'keeps the counts when every app restarts',
    () =>
      withServiceLogs(async () => {
        const pipeline = pipelineOn(TEST_NATS_URL, TEST_DATABASE_URL);
        const first = await startPipeline(pipeline);
        const load = makeLoad(2_000, { dupRatio: 0.25, topics: 10, prefix: 'restartall' });
        expect(load.unique).toBe(1_500);

        const firstRound = await postBatches(first.publisher.url, load.events, {
          batchSize: 500,
          concurrency: 4,
        });
        expect(firstRound.statuses).toEqual([202, 202, 202, 202]);
        const drained = await waitForDrain(pipeline, first.aggregator);
        expect(drained).toMatchObject({ received: 2_000, unique_processed: 1_500, duplicate_dropped: 500 });

        expect(await first.publisher.stop()).toBe(0);
        expect(await first.aggregator.stop()).toBe(0);
        const publisher = await startService('publisher', first.publisher.env);
        const aggregator = await startService('aggregator', first.aggregator.env);
        const counters = ({
          received,
          unique_processed,
          duplicate_dropped,
        }: PipelineStats): Pick<PipelineStats, 'received' | 'unique_processed' | 'duplicate_dropped'> => ({
          received,
          unique_processed,
          duplicate_dropped,
        });
        expect(counters(await getStats(aggregator))).toEqual(counters(drained));
        expect(counters(await getPublisherStats(publisher))).toEqual(counters(drained));

        const secondRound = await postBatches(publisher.url, load.events, { batchSize: 500, concurrency: 4 });
        expect(secondRound.statuses).toEqual([202, 202, 202, 202]);
        const stats = await waitForDrain(pipeline, aggregator);
        expect(stats).toMatchObject({
          received: 4_000,
          unique_processed: 1_500,
          duplicate_dropped: 2_500,
          conflicting_duplicates: 0,
          dead_lettered: 0,
        });
        expect(await storedRows(pipeline)).toEqual({ rows: 1_500, keys: 1_500 });
      }),
    180_000,
  );
});
