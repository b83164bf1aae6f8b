import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

import type { PipelineStats } from '@lib/contracts';

import { splitBatches, summarizeLatencies } from '../publish/load.js';
import { sendBatches } from '../publish/load-runner.js';
import { PIPELINE_LOAD } from './baselines.js';
import { type BenchResult, type BenchSection, BenchSkipped, perSecond } from './bench-section.js';
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
      NATS_URL: context.natsUrl,
      DATABASE_URL: context.databaseUrl,
      NATS_NAMESPACE: namespace,
      DB_SCHEMA: namespace,
      LOG_LEVEL: 'warn',
    };
    const publisher = new ServiceProcess('publisher', { ...common, PORT: String(await freePort()) });
    const aggregator = new ServiceProcess('aggregator', { ...common, PORT: String(await freePort()) });
    // last registered runs first: stop the services, then remove what they declared
    context.defer(`delete streams of ${namespace}`, () => deleteStreams(namespace, context.natsUrl));
    context.defer(`drop schema ${namespace}`, () => dropSchema(namespace, context.databaseUrl));
    context.defer('stop the publisher', () => stopService(publisher));
    context.defer('stop the aggregator', () => stopService(aggregator));

    context.log(`starting publisher and aggregator (namespace and schema ${namespace})`);
    await Promise.all([publisher.start(60_000), aggregator.start(60_000)]);
    const aggregatorPid = aggregator.pid;
    if (aggregatorPid === undefined) throw new Error('the aggregator has no pid');
    const rssBefore = memoryOf(aggregatorPid);
    context.log(`aggregator pid ${aggregatorPid}, RSS ${(rssBefore.rss / MiB).toFixed(1)} MiB`);

    const { events, unique } = makeLoad(PIPELINE_LOAD.events, {
      topics: PIPELINE_LOAD.topics,
      dupRatio: PIPELINE_LOAD.dupRatio,
      prefix: 'bench',
    });
    const batches = splitBatches(events, BATCH_SIZE);
    context.log(
      `posting ${events.length} events in ${batches.length} batches of ${BATCH_SIZE}, ${CONCURRENCY} in flight`,
    );
    let batchesDone = 0;
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
      onBatchDone: () => {
        batchesDone += 1;
        if (batchesDone % 10 === 0) context.log(`posted ${batchesDone}/${batches.length} batches`);
      },
    });
    const postedAt = performance.now();
    context.log(
      `posted in ${sent.elapsedMs.toFixed(0)} ms: ${sent.acceptedEvents} accepted, ${sent.retries} retried, ` +
        `${sent.rejectedEvents + sent.failedEvents} not accepted`,
    );
    if (sent.acceptedEvents === 0)
      throw new Error(`no batch was accepted: ${sent.firstError ?? 'no answer'}`);

    let lastLog = performance.now();
    const stats = await waitFor(
      async () => {
        const current = await readStats(aggregator.url);
        if (performance.now() - lastLog > 2_000) {
          lastLog = performance.now();
          context.log(`draining: received ${current.received}/${sent.acceptedEvents}`);
        }
        return current.received >= sent.acceptedEvents ? current : undefined;
      },
      {
        timeoutMs: DRAIN_TIMEOUT_MS,
        intervalMs: 20,
        description: `aggregator received ${sent.acceptedEvents}`,
      },
    );
    const drainedAt = performance.now();
    const endToEndMs = drainedAt - sent.startedAt;
    const rssAfter = memoryOf(aggregatorPid);
    context.log(
      `drained ${(drainedAt - postedAt).toFixed(0)} ms after the last answer; ${stats.unique_processed} unique, ` +
        `${stats.duplicate_dropped} duplicates dropped; RSS ${(rssAfter.rss / MiB).toFixed(1)} MiB`,
    );

    const rows = await queryDatabase<{ ms: number }>(
      `SELECT (extract(epoch FROM ingested_at) * 1000 - (payload->>'sent_at')::float8)::float8 AS ms
       FROM "${namespace}".events WHERE payload ? 'sent_at'`,
      [],
      context.databaseUrl,
    );
    const commitLatency = summarizeLatencies(rows.map((r) => r.ms));
    const requestLatency = summarizeLatencies(sent.acceptedLatenciesMs);

    const rate = perSecond(sent.acceptedEvents, endToEndMs);
    const jetstreamRate = context.result('baselines.jetstream_publish_events');
    const postgresRate = context.result('baselines.postgres_insert');
    const lowest = [jetstreamRate, postgresRate]
      .filter((r): r is BenchResult => r !== undefined)
      .sort((a, b) => a.value - b.value)[0];
    const partial =
      sent.acceptedEvents < events.length ? ` (${events.length - sent.acceptedEvents} not accepted)` : '';
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
          `${sent.acceptedEvents} events accepted${partial} and received in ${endToEndMs.toFixed(0)} ms ` +
          `(posting took ${sent.elapsedMs.toFixed(0)} ms); baseline: the lower raw rate` +
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
        targets: [{ op: '=', value: sent.acceptedEvents - unique }],
      },
      { name: 'pipeline.aggregator_rss_before', value: rssBefore.rss / MiB, unit: 'MiB' },
      { name: 'pipeline.aggregator_rss_after', value: rssAfter.rss / MiB, unit: 'MiB' },
      {
        name: 'pipeline.aggregator_rss_peak',
        value: rssAfter.peak / MiB,
        unit: 'MiB',
        note: 'VmHWM of the aggregator process: its highest RSS since start',
      },
    ];
  },
};

async function readStats(url: string): Promise<PipelineStats> {
  const response = await fetch(`${url}/stats`, { signal: AbortSignal.timeout(5_000) });
  if (response.status !== 200)
    throw new Error(`GET /stats answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as PipelineStats;
}

/** VmRSS and VmHWM of a process, in bytes, from /proc (Linux). */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!match) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(match[1]) * 1024;
  };
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

/** SIGTERM, and SIGKILL when the graceful stop takes too long. */
async function stopService(service: ServiceProcess): Promise<void> {
  if (service.pid === undefined) return;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>(
    (done) => (timer = setTimeout(() => done('timeout'), STOP_TIMEOUT_MS)),
  );
  try {
    if ((await Promise.race([service.stop(), timedOut])) === 'timeout') await service.kill('SIGKILL');
  } finally {
    clearTimeout(timer);
  }
}
