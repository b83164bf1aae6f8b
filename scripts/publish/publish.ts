/**
 * Load generator for the publisher: `npm run publish -- --events 20000 --dup-ratio 0.3 --topics 10
 * --concurrency 16`. See `--help`.
 */
import { randomInt } from 'node:crypto';

import cliProgress from 'cli-progress';

import {
  exitCodeOf,
  formatProgressLine,
  formatSummary,
  generateEvents,
  type LoadReport,
  parsePublishArgs,
  type PublishOptions,
  splitBatches,
  summarizeLatencies,
  USAGE,
  UsageError,
} from './load.js';
import { sendBatches } from './load-runner.js';

/** A progress display: a bar on a terminal, otherwise a line at every tenth of the way. */
interface Progress {
  advance(events: number, retries: number): void;
  stop(): void;
}

function createProgress(total: number): Progress {
  const started = performance.now();
  let done = 0;
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format:
          'publishing [{bar}] {percentage}% | {value}/{total} events | {rate} events/s | {retries} retries',
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { rate: 0, retries: 0 });
    return {
      advance(events, retries) {
        done += events;
        const rate = Math.round((done / Math.max(1, performance.now() - started)) * 1_000);
        bar.update(done, { rate, retries });
      },
      stop: () => bar.stop(),
    };
  }
  let nextTenth = 1;
  return {
    advance(events) {
      done += events;
      if (done * 10 < nextTenth * total) return;
      while (done * 10 >= nextTenth * total) nextTenth += 1;
      process.stderr.write(`${formatProgressLine(done, total, performance.now() - started)}\n`);
    },
    stop() {},
  };
}

/** Fails early, and readably, when nothing listens at the URL. */
async function checkReachable(url: string): Promise<void> {
  try {
    const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5_000) });
    await response.arrayBuffer();
    if (response.status !== 200) {
      process.stderr.write(`warning: ${url}/health answered ${response.status}; publishing anyway\n`);
    }
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
    throw new Error(`cannot reach the publisher at ${url}${cause}; is it running (npm run start:dev)?`);
  }
}

async function run(options: PublishOptions): Promise<number> {
  const seed = options.seed ?? randomInt(0, 2 ** 32 - 1);
  await checkReachable(options.url);
  const load = generateEvents({
    events: options.events,
    dupRatio: options.dupRatio,
    topics: options.topics,
    seed,
    // with a seed the whole load repeats, timestamps included, so a rerun sends plain duplicates
    startTime: options.seed === undefined ? Date.now() : undefined,
  });
  const batches = splitBatches(load.events, options.batch);
  const progress = createProgress(load.events.length);
  let retriesSeen = 0;
  const sent = await sendBatches(batches, {
    url: options.url,
    concurrency: options.concurrency,
    maxRetries: options.maxRetries,
    timeoutMs: options.timeoutMs,
    onBatchDone: (outcome) => {
      retriesSeen += outcome.attempts - 1;
      progress.advance(outcome.events, retriesSeen);
    },
  }).finally(() => progress.stop());
  const report: LoadReport = {
    url: options.url,
    seed,
    batchSize: options.batch,
    concurrency: options.concurrency,
    sent: load.events.length,
    batches: batches.length,
    acceptedEvents: sent.acceptedEvents,
    acceptedBatches: sent.acceptedBatches,
    rejectedEvents: sent.rejectedEvents,
    rejectedBatches: sent.rejectedBatches,
    failedEvents: sent.failedEvents,
    failedBatches: sent.failedBatches,
    retries: sent.retries,
    requests: sent.requests,
    elapsedMs: sent.elapsedMs,
    latency: summarizeLatencies(sent.acceptedLatenciesMs),
    expectedUnique: load.unique,
    duplicates: load.duplicates,
    firstError: sent.firstError,
  };
  process.stdout.write(`${formatSummary(report)}\n`);
  return exitCodeOf(report);
}

async function main(): Promise<number> {
  let options: PublishOptions | 'help';
  try {
    options = parsePublishArgs(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`error: ${error.message}\n\nRun with --help to see the options.\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    return await run(options);
  } catch (error) {
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

process.exitCode = await main();
