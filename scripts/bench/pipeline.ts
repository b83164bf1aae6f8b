import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

import type { PipelineStats } from '@lib/contracts';

import { splitBatches, summarizeLatencies } from '../publish/load.js';
import { sendBatches } from '../publish/load-runner.js';
import { PIPELINE_LOAD } from './baselines.js';
import {
  type BenchContext,
  type BenchResult,
  type BenchSection,
  BenchSkipped,
  perSecond,
  serviceEnv,
} from './bench-section.js';
import {
  deleteStreams,
  dropSchema,
  freePort,
  makeLoad,
  queryDatabase,
  ROOT,
  ServiceProcess,
  uniqueName,
  waitFor,
} from '@lib/testing';

const BATCH_SIZE = 1_000;
const WARM_UP_EVENTS = 10_000;
/** Measured rounds; the median is reported, since one short run on a shared machine is mostly noise. */
const ROUNDS = 3;
const CONCURRENCY = 8;
const DRAIN_TIMEOUT_MS = 180_000;
const STOP_TIMEOUT_MS = 15_000;
const MiB = 1024 * 1024;

/**
 * The whole ingest pipeline as users run it: the built publisher and aggregator as child processes
 * on a fresh namespace and schema, 50k events (30 % duplicates) posted in batches of 1,000 with 8
 * requests in flight, timed from the first POST until the aggregator's `received` counter reaches
 * the number of events accepted. Each event carries `payload.sent_at` (ms, stamped when its batch is
 * first posted), so publish-to-commit latency is read from the stored rows afterwards:
 * `ingested_at` is `now()` of the inserting transaction, i.e. its start, a little before the commit.
 */
export const pipelineSection: BenchSection = {
  name: 'pipeline',
  description: 'publisher → JetStream → aggregator → Postgres, end to end',
  async run(context) {
    const aggregatorEntry = resolve(ROOT, 'dist/apps/aggregator/src/main.js');
    if (!existsSync(aggregatorEntry)) {
      throw new BenchSkipped(`${aggregatorEntry} is missing: the aggregator is not built (npm run build)`);
    }
    const namespace = uniqueName('bench');
    const common = {
      ...serviceEnv(context, namespace),
    };
    const publisher = new ServiceProcess('publisher', { ...common, PORT: String(await freePort()) });
    const aggregator = new ServiceProcess('aggregator', { ...common, PORT: String(await freePort()) });
    // last registered runs first: stop the services, then remove what they declared
    context.defer(`delete streams of ${namespace}`, () => deleteStreams(namespace, context.natsUrl));
    context.defer(`drop schema ${namespace}`, () => dropSchema(namespace, context.databaseUrl));
    context.defer('stop the publisher', () => publisher.stop(STOP_TIMEOUT_MS));
    context.defer('stop the aggregator', () => aggregator.stop(STOP_TIMEOUT_MS));

    context.log(`starting publisher and aggregator (namespace and schema ${namespace})`);
    await Promise.all([publisher.start(60_000), aggregator.start(60_000)]);
    const aggregatorPid = aggregator.pid;
    if (aggregatorPid === undefined) throw new Error('the aggregator has no pid');
    context.log(`aggregator pid ${aggregatorPid}, RSS ${(memoryOf(aggregatorPid).rss / MiB).toFixed(1)} MiB`);

    // a short unmeasured round first: JIT, connection pools and the consumers warm up
    const warmUp = await postAndDrain(context, publisher, aggregator, 'warmup', WARM_UP_EVENTS, 0);
    const rssBefore = memoryOf(aggregatorPid);
    context.log(`warmed up; aggregator RSS ${(rssBefore.rss / MiB).toFixed(1)} MiB`);
    const rounds: Round[] = [];
    let received = warmUp.stats.received;
    for (let i = 1; i <= ROUNDS; i++) {
      const round = await postAndDrain(
        context,
        publisher,
        aggregator,
        `r${i}`,
        PIPELINE_LOAD.events,
        received,
      );
      received = round.stats.received;
      rounds.push(round);
    }
    const rssAfter = memoryOf(aggregatorPid);
    const median = [...rounds].sort((a, b) => a.rate - b.rate)[Math.floor(rounds.length / 2)];
    const stats = rounds[rounds.length - 1].stats;
    const unique = warmUp.unique + rounds.reduce((sum, r) => sum + r.unique, 0);
    const accepted = warmUp.sent.acceptedEvents + rounds.reduce((sum, r) => sum + r.sent.acceptedEvents, 0);
    context.log(
      `rounds: ${rounds.map((r) => Math.round(r.rate)).join(', ')} events/s; ${stats.unique_processed} unique, ` +
        `${stats.duplicate_dropped} duplicates dropped; RSS ${(rssAfter.rss / MiB).toFixed(1)} MiB`,
    );

    const rows = await queryDatabase<{ ms: number }>(
      `SELECT (extract(epoch FROM ingested_at) * 1000 - (payload->>'sent_at')::float8)::float8 AS ms
       FROM "${namespace}".events WHERE payload ? 'sent_at' AND topic NOT LIKE 'warmup.%'`,
      [],
      context.databaseUrl,
    );
    const commitLatency = summarizeLatencies(rows.map((r) => r.ms));
    const requestLatency = summarizeLatencies(rounds.flatMap((r) => r.sent.acceptedLatenciesMs));
    const { sent, endToEndMs, rate } = median;
    const jetstreamRate = context.result('baselines.jetstream_publish_events');
    const postgresRate = context.result('baselines.postgres_insert');
    const lowest = [jetstreamRate, postgresRate]
      .filter((r): r is BenchResult => r !== undefined)
      .sort((a, b) => a.value - b.value)[0];
    const notAccepted = PIPELINE_LOAD.events - sent.acceptedEvents;
    const partial = notAccepted > 0 ? ` (${notAccepted} not accepted)` : '';
    return [
      {
        name: 'pipeline.end_to_end',
        value: rate,
        unit: 'events/s',
        baseline: lowest && { name: lowest.name, value: lowest.value },
        targets: [
          { op: '>=', value: 20_000 },
          { op: '>=', value: 0.4, of: 'ratio' },
        ],
        note:
          `median of ${ROUNDS} rounds (${rounds.map((r) => Math.round(r.rate)).join(', ')} events/s) after a ` +
          `${WARM_UP_EVENTS}-event warm-up; median round: ${sent.acceptedEvents} events accepted${partial} and ` +
          `received in ${endToEndMs.toFixed(0)} ms (posting took ${sent.elapsedMs.toFixed(0)} ms); ` +
          'baseline: the lower raw rate' +
          (lowest ? '' : ' (run the baselines section too)'),
      },
      { name: 'pipeline.request_latency_p50', value: requestLatency.p50, unit: 'ms' },
      {
        name: 'pipeline.request_latency_p99',
        value: requestLatency.p99,
        unit: 'ms',
        note: `POST → 202 over ${requestLatency.count} requests`,
      },
      { name: 'pipeline.publish_to_commit_p50', value: commitLatency.p50, unit: 'ms' },
      {
        name: 'pipeline.publish_to_commit_p99',
        value: commitLatency.p99,
        unit: 'ms',
        note: `first POST of an event → ingested_at of its row, over ${commitLatency.count} stored events`,
      },
      {
        name: 'pipeline.retried_requests',
        value: sent.retries,
        unit: 'requests',
        note: 'answered 503/429, retried',
      },
      {
        name: 'pipeline.unique_processed',
        value: stats.unique_processed,
        unit: 'events',
        targets: [{ op: '=', value: unique }],
      },
      {
        name: 'pipeline.duplicate_dropped',
        value: stats.duplicate_dropped,
        unit: 'events',
        targets: [{ op: '=', value: accepted - unique }],
      },
      {
        name: 'pipeline.aggregator_rss_before',
        value: rssBefore.rss / MiB,
        unit: 'MiB',
        note: 'after the warm-up',
      },
      {
        name: 'pipeline.aggregator_rss_after',
        value: rssAfter.rss / MiB,
        unit: 'MiB',
        note: `after ${ROUNDS} × ${PIPELINE_LOAD.events} more events`,
      },
      {
        name: 'pipeline.aggregator_rss_peak',
        value: rssAfter.peak / MiB,
        unit: 'MiB',
        note: 'VmHWM of the aggregator process: its highest RSS since start',
      },
    ];
  },
};

export interface Round {
  sent: Awaited<ReturnType<typeof sendBatches>>;
  stats: PipelineStats;
  unique: number;
  endToEndMs: number;
  rate: number;
}

/**
 * Posts `count` fresh events (topics `<prefix>.*`, 30 % duplicates) and waits until the aggregator's
 * `received` reaches `receivedBefore` plus what was accepted: one timed round.
 */
export async function postAndDrain(
  context: BenchContext,
  publisher: ServiceProcess,
  aggregator: ServiceProcess,
  prefix: string,
  count: number,
  receivedBefore: number,
  topics: number = PIPELINE_LOAD.topics,
): Promise<Round> {
  const { events, unique } = makeLoad(count, {
    topics,
    dupRatio: PIPELINE_LOAD.dupRatio,
    prefix,
  });
  const batches = splitBatches(events, BATCH_SIZE);
  context.log(`${prefix}: posting ${events.length} events in ${batches.length} batches of ${BATCH_SIZE}`);
  const sent = await sendBatches(batches, {
    url: publisher.url,
    concurrency: CONCURRENCY,
    maxRetries: 30,
    timeoutMs: 60_000,
    beforeSend: (batch) => {
      const now = Date.now();
      // a duplicate shares its original's payload object, so it keeps the original's first send time
      for (const event of batch) event.payload.sent_at ??= now;
    },
  });
  if (sent.acceptedEvents === 0) throw new Error(`no batch was accepted: ${sent.firstError ?? 'no answer'}`);
  const target = receivedBefore + sent.acceptedEvents;
  const stats = await waitFor(
    async () => {
      const current = await readStats(aggregator.url);
      return current.received >= target ? current : undefined;
    },
    { timeoutMs: DRAIN_TIMEOUT_MS, intervalMs: 20, description: `aggregator received ${target}` },
  );
  const endToEndMs = performance.now() - sent.startedAt;
  const rate = perSecond(sent.acceptedEvents, endToEndMs);
  context.log(`${prefix}: ${Math.round(rate)} events/s end to end (posting ${sent.elapsedMs.toFixed(0)} ms)`);
  return { sent, stats, unique, endToEndMs, rate };
}

export async function readStats(url: string): Promise<PipelineStats> {
  const response = await fetch(`${url}/stats`, { signal: AbortSignal.timeout(5_000) });
  if (response.status !== 200)
    throw new Error(`GET /stats answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as PipelineStats;
}

/** VmRSS and VmHWM of a process, in bytes, from /proc (Linux). */
export function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!match) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(match[1]) * 1024;
  };
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}
