/**
 * The pure parts of the load generator: command-line parsing, seeded event generation, batching,
 * latency percentiles and the closing summary. No I/O here, so all of it is unit-tested.
 */
import { parseArgs } from 'node:util';

import { type IngestEvent, seededRandom } from '@lib/contracts';

import { integerOption, UsageError } from '../cli-options.js';

export { UsageError };

export const USAGE = `Usage: npm run publish -- [options]

Posts generated events to a running publisher's POST /publish and prints a summary.

Options:
  --events <n>        events to send (default 20000)
  --dup-ratio <r>     share of events that repeat an earlier event, 0 <= r < 1 (default 0.3)
  --topics <n>        topics the events are spread over (default 10)
  --concurrency <n>   requests in flight (default 16)
  --batch <n>         events per request, at most the publisher's PUBLISH_BATCH_LIMIT (default 500)
  --url <url>         publisher base URL (default http://127.0.0.1:3000)
  --seed <n>          makes the events (ids, topics, timestamps, duplicates) reproducible;
                      a rerun with the same seed against the same store only sends duplicates
  --max-retries <n>   retries of one batch answered 503/429, honouring Retry-After (default 10)
  --timeout <ms>      per-request timeout (default 30000)
  -h, --help          show this help

Exits 0 when every batch was accepted, 1 when a batch was finally rejected or failed, 2 on bad options.`;

export interface PublishOptions {
  events: number;
  dupRatio: number;
  topics: number;
  concurrency: number;
  batch: number;
  url: string;
  /** Undefined when not given: the caller picks a random one and reports it. */
  seed?: number;
  maxRetries: number;
  timeoutMs: number;
}

/** A bad command line; the message names the option and what it accepts. */

export const MAX_EVENTS = 5_000_000;

/** Parses `argv` (without node and script); returns `'help'` when help was asked for. */
export function parsePublishArgs(argv: string[]): PublishOptions | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        events: { type: 'string' },
        'dup-ratio': { type: 'string' },
        topics: { type: 'string' },
        concurrency: { type: 'string' },
        batch: { type: 'string' },
        url: { type: 'string' },
        seed: { type: 'string' },
        'max-retries': { type: 'string' },
        timeout: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  if (values.help === true) return 'help';
  const text = (name: string): string | undefined => values[name] as string | undefined;
  const options: PublishOptions = {
    events: integerOption('events', text('events'), 20_000, 1, MAX_EVENTS),
    dupRatio: ratioOption('dup-ratio', text('dup-ratio'), 0.3),
    topics: integerOption('topics', text('topics'), 10, 1, 100_000),
    concurrency: integerOption('concurrency', text('concurrency'), 16, 1, 1_024),
    batch: integerOption('batch', text('batch'), 500, 1, 100_000),
    url: urlOption('url', text('url'), 'http://127.0.0.1:3000'),
    seed: text('seed') === undefined ? undefined : integerOption('seed', text('seed'), 0, 0, 2 ** 32 - 1),
    maxRetries: integerOption('max-retries', text('max-retries'), 10, 0, 1_000),
    timeoutMs: integerOption('timeout', text('timeout'), 30_000, 100, 600_000),
  };
  return options;
}

function ratioOption(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const trimmed = raw.trim();
  const value = /^(\d+(\.\d*)?|\.\d+)$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (!(value >= 0 && value < 1)) {
    throw new UsageError(`--${name} must be a number from 0 up to (not including) 1, got "${raw}"`);
  }
  return value;
}

function urlOption(name: string, raw: string | undefined, fallback: string): string {
  const value = raw ?? fallback;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--${name} must be a URL like http://127.0.0.1:3000, got "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--${name} must use http: or https:, got "${value}"`);
  }
  return value.replace(/\/+$/, '');
}

export interface GeneratedLoad {
  events: IngestEvent[];
  /** Distinct `(topic, event_id)` keys: what a fresh store holds afterwards. */
  unique: number;
  duplicates: number;
}

export interface LoadShape {
  events: number;
  dupRatio: number;
  topics: number;
  seed: number;
  /** Timestamp of the first original event; the next ones are 1 ms apart. */
  startTime?: number;
  topicPrefix?: string;
}

/**
 * `events` events where a `dupRatio` share repeats an earlier original (same object, so the same
 * topic, id and payload: a plain duplicate, never a conflicting one). Originals go round-robin over
 * the topics; where duplicates fall and which original each repeats comes from `seed`. The first
 * event is always an original, and there is at least one whenever `events > 0`.
 */
export function generateEvents(shape: LoadShape): GeneratedLoad {
  const random = seededRandom(shape.seed);
  const total = shape.events;
  const unique = total === 0 ? 0 : Math.max(1, Math.round(total * (1 - shape.dupRatio)));
  const isDuplicate = new Uint8Array(total);
  isDuplicate.fill(1, unique);
  for (let i = total - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [isDuplicate[i], isDuplicate[j]] = [isDuplicate[j], isDuplicate[i]];
  }
  if (isDuplicate[0] === 1) {
    const firstOriginal = isDuplicate.indexOf(0);
    [isDuplicate[0], isDuplicate[firstOriginal]] = [0, 1];
  }
  const prefix = shape.topicPrefix ?? 'load';
  const run = shape.seed.toString(16).padStart(8, '0');
  const startTime = shape.startTime ?? Date.UTC(2025, 0, 1);
  const originals: IngestEvent[] = [];
  const events: IngestEvent[] = new Array<IngestEvent>(total);
  for (let i = 0; i < total; i++) {
    if (isDuplicate[i] === 1) {
      events[i] = originals[Math.floor(random() * originals.length)];
      continue;
    }
    const n = originals.length;
    const event: IngestEvent = {
      topic: `${prefix}.t${n % shape.topics}`,
      event_id: `${run}-${n}`,
      timestamp: new Date(startTime + n).toISOString(),
      source: 'load-generator',
      payload: { n, value: Math.floor(random() * 1_000_000) },
    };
    originals.push(event);
    events[i] = event;
  }
  return { events, unique, duplicates: total - unique };
}

/** Cuts `items` into consecutive batches of at most `size`. */
export function splitBatches<T>(items: T[], size: number): T[][] {
  if (!(size >= 1)) throw new RangeError(`batch size must be at least 1, got ${size}`);
  const batches: T[][] = [];
  for (let i = 0; i < items.length; i += size) batches.push(items.slice(i, i + size));
  return batches;
}

/**
 * How long to wait before retrying, from a `Retry-After` header (seconds or an HTTP date), within
 * [0, `maxMs`]; `fallbackMs` when the header is missing or unreadable.
 */
export function retryDelayMs(
  header: string | null,
  now = Date.now(),
  fallbackMs = 1_000,
  maxMs = 30_000,
): number {
  let delay = fallbackMs;
  if (header !== null && header.trim() !== '') {
    const value = header.trim();
    if (/^\d+(\.\d+)?$/.test(value)) delay = Number(value) * 1_000;
    else if (!Number.isNaN(Date.parse(value))) delay = Date.parse(value) - now;
  }
  return Math.min(maxMs, Math.max(0, delay));
}

/** The `p`th percentile (nearest rank) of ascending `sorted` values; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export function summarizeLatencies(values: Iterable<number>): LatencySummary {
  const sorted = Float64Array.from(values).sort();
  const list = Array.from(sorted);
  return {
    count: list.length,
    p50: percentile(list, 50),
    p99: percentile(list, 99),
    max: list.length === 0 ? Number.NaN : list[list.length - 1],
  };
}

/** What happened to the batches of a run, counted by the sender. */
export interface BatchTally {
  acceptedEvents: number;
  acceptedBatches: number;
  /** Answered 4xx (other than 429): the publisher refused the batch for good. */
  rejectedEvents: number;
  rejectedBatches: number;
  /** No answer, 5xx other than 503, or still 503/429 after every retry: persisted or not, unknown. */
  failedEvents: number;
  failedBatches: number;
  /** Requests repeated after a 503 or 429. */
  retries: number;
  requests: number;
  /** From the first request to the last answer. */
  elapsedMs: number;
  /** The first problem seen, e.g. the body of a 400. */
  firstError?: string;
}

/** Everything the closing summary reports about one run. */
export interface LoadReport extends BatchTally {
  url: string;
  seed: number;
  batchSize: number;
  concurrency: number;
  /** Events generated and posted (each counted once, however often its batch was retried). */
  sent: number;
  batches: number;
  /** Latency of the requests answered 202. */
  latency: LatencySummary;
  expectedUnique: number;
  duplicates: number;
}

export function exitCodeOf(report: LoadReport): number {
  return report.rejectedBatches > 0 || report.failedBatches > 0 ? 1 : 0;
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });

function ms(value: number): string {
  return Number.isNaN(value) ? 'n/a' : `${decimal.format(value)} ms`;
}

/** The closing summary, one fact per line. */
export function formatSummary(report: LoadReport): string {
  const seconds = report.elapsedMs / 1_000;
  const rate = seconds > 0 ? report.acceptedEvents / seconds : 0;
  const rows: [string, string][] = [
    [
      'sent',
      `${integer.format(report.sent)} events in ${integer.format(report.batches)} batches ` +
        `(${report.batchSize} per batch, ${report.concurrency} in flight) to ${report.url}`,
    ],
    [
      'accepted',
      `${integer.format(report.acceptedEvents)} events (${integer.format(report.acceptedBatches)} batches)`,
    ],
    [
      'rejected (4xx)',
      `${integer.format(report.rejectedEvents)} events (${integer.format(report.rejectedBatches)} batches)`,
    ],
  ];
  if (report.failedBatches > 0) {
    rows.push([
      'failed',
      `${integer.format(report.failedEvents)} events (${integer.format(report.failedBatches)} batches)`,
    ]);
  }
  rows.push(
    [
      'retried (503)',
      `${integer.format(report.retries)} requests (${integer.format(report.requests)} requests in all)`,
    ],
    ['throughput', `${integer.format(rate)} events/s accepted over ${seconds.toFixed(2)} s`],
    [
      'request latency',
      `p50 ${ms(report.latency.p50)}, p99 ${ms(report.latency.p99)}, max ${ms(report.latency.max)} ` +
        `(${integer.format(report.latency.count)} requests answered 202)`,
    ],
    [
      'expected unique',
      `${integer.format(report.expectedUnique)} events (${integer.format(report.duplicates)} duplicates, seed ${report.seed})`,
    ],
  );
  if (report.firstError !== undefined) rows.push(['first error', report.firstError]);
  const width = Math.max(...rows.map(([label]) => label.length));
  const status = exitCodeOf(report) === 0 ? 'every batch accepted' : 'some batches were NOT accepted';
  return [`Summary: ${status}`, ...rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`)].join(
    '\n',
  );
}

/** One progress line for non-TTY output, e.g. `published 4,000/20,000 events (20%), 12,345 events/s`. */
export function formatProgressLine(done: number, total: number, elapsedMs: number): string {
  const percent = total === 0 ? 100 : Math.floor((done / total) * 100);
  const rate = elapsedMs > 0 ? (done / elapsedMs) * 1_000 : 0;
  return `published ${integer.format(done)}/${integer.format(total)} events (${percent}%), ${integer.format(rate)} events/s`;
}
