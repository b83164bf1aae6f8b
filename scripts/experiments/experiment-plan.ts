/**
 * The pure parts of `npm run experiments`: the command line, the four experiments of seed 000 as
 * cells (a config and a method each), and how results read as Markdown, CSV, a console table and
 * chart specifications. No I/O here, so all of it is unit-tested.
 */
import { parseArgs } from 'node:util';

import { type ChatConfig, type ChatMethod, DEFAULT_CHAT_CONFIG } from '@lib/contracts';

import { integerOption, UsageError } from '../cli-options.js';

export { UsageError };

export const USAGE = `Usage: npm run experiments -- [options]

Runs the four experiments of the chat simulation headless against a running chat gateway: loss 10 % vs
50 %, latency 10-50 vs 200-500 ms, max_retries 0/1/2/5 x ack_timeout 300/600/1000 ms, direct vs pubsub.
Writes results.md, results.csv and one PNG chart per experiment; restores the gateway's config after.

Options:
  --url <url>         chat gateway base URL (default http://127.0.0.1:3002)
  --messages <n>      messages A->B per cell (default 300)
  --window <n>        unanswered send_message requests at a time (default 50)
  --seed <n>          seed of the gateway's loss/latency generator, set at every cell (default: random)
  --out <dir>         where the results go (default artifacts/experiments)
  --only <ids>        comma-separated experiments to run: loss, latency, retries, methods (default all)
  --no-charts         skip the PNG charts (no browser needed)
  -h, --help          show this help

Exits 0 when every cell ran, 1 when the gateway failed or could not be reached, 2 on bad options.`;

export const EXPERIMENT_IDS = ['loss', 'latency', 'retries', 'methods'] as const;
export type ExperimentId = (typeof EXPERIMENT_IDS)[number];

export interface ExperimentOptions {
  url: string;
  messages: number;
  window: number;
  seed: number;
  /** False when the seed was drawn at random (it is reported so the run can be repeated). */
  seedGiven: boolean;
  out: string;
  only: ExperimentId[];
  charts: boolean;
}

/** A bad command line; the message names the option and what it accepts. */

export const DEFAULT_URL = 'http://127.0.0.1:3002';
export const DEFAULT_MESSAGES = 300;
export const DEFAULT_WINDOW = 50;
export const DEFAULT_OUT = 'artifacts/experiments';

/** Parses `argv` (without node and script); `randomSeed` is used when `--seed` is absent. */
export function parseExperimentArgs(argv: string[], randomSeed: () => number): ExperimentOptions | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: 'string' },
        messages: { type: 'string' },
        window: { type: 'string' },
        seed: { type: 'string' },
        out: { type: 'string' },
        only: { type: 'string' },
        'no-charts': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  if (values.help === true) return 'help';
  const text = (name: string): string | undefined => values[name] as string | undefined;
  const seedText = text('seed');
  const out = text('out') ?? DEFAULT_OUT;
  if (out.trim() === '') throw new UsageError('--out must name a folder');
  return {
    url: urlOption(text('url')),
    messages: integerOption('messages', text('messages'), DEFAULT_MESSAGES, 1, 100_000),
    window: integerOption('window', text('window'), DEFAULT_WINDOW, 1, 10_000),
    seed: seedText === undefined ? randomSeed() >>> 0 : integerOption('seed', seedText, 0, 0, 2 ** 32 - 1),
    seedGiven: seedText !== undefined,
    out,
    only: onlyOption(text('only')),
    charts: values['no-charts'] !== true,
  };
}

function urlOption(raw: string | undefined): string {
  const value = raw ?? DEFAULT_URL;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--url must be a URL like ${DEFAULT_URL}, got "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--url must use http: or https:, got "${value}"`);
  }
  return value.replace(/\/+$/, '');
}

function onlyOption(raw: string | undefined): ExperimentId[] {
  if (raw === undefined) return [...EXPERIMENT_IDS];
  const wanted = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const unknown = wanted.filter((id) => !(EXPERIMENT_IDS as readonly string[]).includes(id));
  if (wanted.length === 0 || unknown.length > 0) {
    throw new UsageError(`--only takes some of ${EXPERIMENT_IDS.join(', ')}, got "${raw}"`);
  }
  return EXPERIMENT_IDS.filter((id) => wanted.includes(id));
}

/** The simulation settings of a cell (the seed is the run's). */
export type CellConfig = Omit<ChatConfig, 'seed'>;

/** One measured run: a config, a method, N messages. */
export interface Cell {
  experiment: ExperimentId;
  /** What distinguishes the cell within its experiment, e.g. `loss 50 %`. */
  label: string;
  method: ChatMethod;
  config: CellConfig;
}

export interface Experiment {
  id: ExperimentId;
  title: string;
  /** What the seed expects to see. */
  expectation: string;
  cells: Cell[];
}

const BASE: CellConfig = {
  loss_rate: DEFAULT_CHAT_CONFIG.loss_rate,
  latency_min_ms: DEFAULT_CHAT_CONFIG.latency_min_ms,
  latency_max_ms: DEFAULT_CHAT_CONFIG.latency_max_ms,
  max_retries: DEFAULT_CHAT_CONFIG.max_retries,
  ack_timeout_ms: DEFAULT_CHAT_CONFIG.ack_timeout_ms,
};
const METHODS: ChatMethod[] = ['direct', 'pubsub'];
export const RETRY_CHOICES = [0, 1, 2, 5] as const;
export const TIMEOUT_CHOICES = [300, 600, 1000] as const;

/** Seed 000's four experiments; every setting not named is the gateway's default. */
export function experimentPlan(only: readonly ExperimentId[] = EXPERIMENT_IDS): Experiment[] {
  const all: Experiment[] = [
    {
      id: 'loss',
      title: 'Experiment 1: loss rate 10 % vs 50 %',
      expectation: 'pubsub with retries still delivers most messages at 50 % loss; direct loses many',
      cells: [10, 50].flatMap((loss) =>
        METHODS.map((method) => ({
          experiment: 'loss' as const,
          label: `loss ${loss} %`,
          method,
          config: { ...BASE, loss_rate: loss },
        })),
      ),
    },
    {
      id: 'latency',
      title: 'Experiment 2: latency 10–50 ms vs 200–500 ms',
      expectation: 'high latency lowers throughput',
      cells: [
        [10, 50],
        [200, 500],
      ].flatMap(([min, max]) =>
        METHODS.map((method) => ({
          experiment: 'latency' as const,
          label: `latency ${min}–${max} ms`,
          method,
          config: { ...BASE, latency_min_ms: min, latency_max_ms: max },
        })),
      ),
    },
    {
      id: 'retries',
      title: 'Experiment 3: pubsub max_retries 0/1/2/5 × ack_timeout 300/600/1000 ms',
      expectation: 'more retries and a longer timeout: more reliable but slower',
      cells: RETRY_CHOICES.flatMap((retries) =>
        TIMEOUT_CHOICES.map((timeout) => ({
          experiment: 'retries' as const,
          label: `retries ${retries}, timeout ${timeout} ms`,
          method: 'pubsub' as const,
          config: { ...BASE, max_retries: retries, ack_timeout_ms: timeout },
        })),
      ),
    },
    {
      id: 'methods',
      title: 'Experiment 4: direct vs pubsub at the default config',
      expectation: 'pubsub is more reliable but its latency is higher',
      cells: METHODS.map((method) => ({
        experiment: 'methods' as const,
        label: 'default config',
        method,
        config: { ...BASE },
      })),
    },
  ];
  return all.filter((experiment) => only.includes(experiment.id));
}

/** What one cell measured. Counts come from the gateway's metrics; throughput from the client's clock. */
export interface CellResult {
  cell: Cell;
  /** Messages A sent (send_message accepted). */
  sent: number;
  delivered: number;
  lost: number;
  retries: number;
  /** Duplicate arrivals the gateway suppressed. */
  duplicates: number;
  /** delivery_failed notices A received. */
  failed: number;
  avgLatencyMs: number;
  p50LatencyMs: number;
  p99LatencyMs: number;
  /** Messages B received per second, from the first send to the last delivery. */
  throughput: number;
  elapsedMs: number;
}

export function deliveredPercent(result: CellResult): number {
  return result.sent > 0 ? (result.delivered / result.sent) * 100 : 0;
}

const COLUMNS = [
  'cell',
  'method',
  'delivered %',
  'delivered',
  'lost',
  'retries',
  'dup. suppressed',
  'failed',
  'avg ms',
  'p50 ms',
  'p99 ms',
  'msg/s',
] as const;

function row(result: CellResult): string[] {
  return [
    result.cell.label,
    result.cell.method,
    deliveredPercent(result).toFixed(1),
    `${result.delivered}/${result.sent}`,
    String(result.lost),
    String(result.retries),
    String(result.duplicates),
    String(result.failed),
    result.avgLatencyMs.toFixed(0),
    result.p50LatencyMs.toFixed(0),
    result.p99LatencyMs.toFixed(0),
    result.throughput.toFixed(0),
  ];
}

/** A Markdown table of `results`, numbers right-aligned. */
export function markdownTable(results: CellResult[]): string {
  const rows = results.map(row);
  const widths = COLUMNS.map((title, i) => Math.max(title.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (i < 2 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`;
  return [line(COLUMNS), rule, ...rows.map(line)].join('\n');
}

/** One sentence on what an experiment's results show, from the numbers themselves. */
export function reading(experiment: Experiment, results: CellResult[]): string {
  const find = (label: string, method: ChatMethod): CellResult | undefined =>
    results.find((r) => r.cell.label === label && r.cell.method === method);
  const pct = (r: CellResult | undefined): string => (r ? `${deliveredPercent(r).toFixed(1)} %` : 'n/a');
  const ms = (value: number | undefined): string => (value === undefined ? 'n/a' : `${value.toFixed(0)} ms`);
  switch (experiment.id) {
    case 'loss': {
      const [low, high] = ['loss 10 %', 'loss 50 %'];
      return (
        `From 10 % to 50 % loss, direct delivery falls from ${pct(find(low, 'direct'))} to ${pct(find(high, 'direct'))} ` +
        `while pubsub (2 retries) goes from ${pct(find(low, 'pubsub'))} to ${pct(find(high, 'pubsub'))}, ` +
        `paying ${find(high, 'pubsub')?.retries ?? 'n/a'} retries and a p99 of ${ms(find(high, 'pubsub')?.p99LatencyMs)}.`
      );
    }
    case 'latency': {
      const [fast, slow] = ['latency 10–50 ms', 'latency 200–500 ms'];
      const rate = (r: CellResult | undefined): string => (r ? `${r.throughput.toFixed(0)} msg/s` : 'n/a');
      return (
        `With 200–500 ms instead of 10–50 ms, direct throughput goes from ${rate(find(fast, 'direct'))} to ` +
        `${rate(find(slow, 'direct'))} and pubsub from ${rate(find(fast, 'pubsub'))} to ${rate(find(slow, 'pubsub'))} ` +
        `(avg latency ${ms(find(fast, 'pubsub')?.avgLatencyMs)} → ${ms(find(slow, 'pubsub')?.avgLatencyMs)}).`
      );
    }
    case 'retries': {
      if (results.length === 0) return 'No cell ran.';
      const extreme = (value: (r: CellResult) => number): [CellResult, CellResult] => {
        const sorted = [...results].sort((x, y) => value(x) - value(y));
        return [sorted[0], sorted[sorted.length - 1]];
      };
      const [worst, best] = extreme(deliveredPercent);
      const [fastest, slowest] = extreme((r) => r.p99LatencyMs);
      const [fewest, most] = extreme((r) => r.retries);
      return (
        `Delivery ranges from ${pct(worst)} (${worst.cell.label}) to ${pct(best)} (${best.cell.label}); ` +
        `p99 latency from ${ms(fastest.p99LatencyMs)} (${fastest.cell.label}) to ${ms(slowest.p99LatencyMs)} ` +
        `(${slowest.cell.label}); ${fewest.retries}–${most.retries} retries per cell.`
      );
    }
    case 'methods': {
      const direct = find('default config', 'direct');
      const pubsub = find('default config', 'pubsub');
      return (
        `At the default config direct delivers ${pct(direct)} (avg ${ms(direct?.avgLatencyMs)}) and pubsub ` +
        `${pct(pubsub)} (avg ${ms(pubsub?.avgLatencyMs)}, p99 ${ms(pubsub?.p99LatencyMs)}): reliability costs latency.`
      );
    }
  }
}

export interface RunSummary {
  url: string;
  messages: number;
  window: number;
  seed: number;
  startedAt: string;
  elapsedMs: number;
}

/** `results.md`: the run's settings, then per experiment its table, its reading and its chart. */
export function resultsMarkdown(
  summary: RunSummary,
  experiments: Experiment[],
  results: CellResult[],
  chartFiles: Partial<Record<ExperimentId, string>> = {},
): string {
  const parts = [
    '# Chat simulation experiments',
    '',
    `Gateway ${summary.url}, ${summary.messages} messages A→B per cell, ${summary.window} unanswered sends at a ` +
      `time, seed ${summary.seed}; started ${summary.startedAt}, took ${(summary.elapsedMs / 1_000).toFixed(0)} s. ` +
      `Settings not named in a cell are the defaults (loss ${BASE.loss_rate} %, latency ` +
      `${BASE.latency_min_ms}–${BASE.latency_max_ms} ms, ${BASE.max_retries} retries, ack timeout ${BASE.ack_timeout_ms} ms). ` +
      'Latencies are from send_message to the message reaching B (gateway clock); msg/s is what B received ' +
      'per second from the first send to the last delivery.',
  ];
  for (const experiment of experiments) {
    const own = results.filter((r) => r.cell.experiment === experiment.id);
    parts.push('', `## ${experiment.title}`, '', markdownTable(own), '', reading(experiment, own));
    parts.push('', `Expected (seed): ${experiment.expectation}.`);
    const chart = chartFiles[experiment.id];
    if (chart) parts.push('', `![${experiment.title}](${chart})`);
  }
  return `${parts.join('\n')}\n`;
}

const CSV_COLUMNS = [
  'experiment',
  'cell',
  'method',
  'loss_rate',
  'latency_min_ms',
  'latency_max_ms',
  'max_retries',
  'ack_timeout_ms',
  'sent',
  'delivered',
  'delivered_pct',
  'lost',
  'retries',
  'duplicates_suppressed',
  'failed',
  'avg_latency_ms',
  'p50_latency_ms',
  'p99_latency_ms',
  'throughput_msg_s',
  'elapsed_ms',
];

function csvField(value: string | number): string {
  const text = String(value);
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** `results.csv`: one line per cell with its full config. */
export function resultsCsv(results: CellResult[]): string {
  const lines = results.map((r) =>
    [
      r.cell.experiment,
      r.cell.label,
      r.cell.method,
      r.cell.config.loss_rate,
      r.cell.config.latency_min_ms,
      r.cell.config.latency_max_ms,
      r.cell.config.max_retries,
      r.cell.config.ack_timeout_ms,
      r.sent,
      r.delivered,
      deliveredPercent(r).toFixed(2),
      r.lost,
      r.retries,
      r.duplicates,
      r.failed,
      r.avgLatencyMs.toFixed(3),
      r.p50LatencyMs.toFixed(3),
      r.p99LatencyMs.toFixed(3),
      r.throughput.toFixed(1),
      Math.round(r.elapsedMs),
    ]
      .map(csvField)
      .join(','),
  );
  return `${[CSV_COLUMNS.join(','), ...lines].join('\n')}\n`;
}

/** A chart as Chart.js draws it: bars (and lines) over labels, on one or two value axes. */
export interface ChartSpec {
  title: string;
  labels: string[];
  /** `color`: index into the palette, so a line can share its bar's color (default: its position). */
  datasets: { label: string; data: number[]; type: 'bar' | 'line'; axis: 'y' | 'y1'; color?: number }[];
  axes: { y: string; y1?: string };
}

const round = (value: number, digits = 1): number => Number(value.toFixed(digits));

/** The chart of one experiment: what it is about on the left axis, latency on the right where it matters. */
export function chartSpec(experiment: Experiment, results: CellResult[]): ChartSpec {
  const own = results.filter((r) => r.cell.experiment === experiment.id);
  const labels = [...new Set(own.map((r) => r.cell.label))];
  const series = (method: ChatMethod, value: (r: CellResult) => number): number[] =>
    labels.map((label) => {
      const r = own.find((x) => x.cell.label === label && x.cell.method === method);
      return r ? round(value(r)) : Number.NaN;
    });
  switch (experiment.id) {
    case 'loss':
      return {
        title: experiment.title,
        labels,
        datasets: METHODS.map((method) => ({
          label: `${method} delivered %`,
          data: series(method, deliveredPercent),
          type: 'bar' as const,
          axis: 'y' as const,
        })),
        axes: { y: 'delivered %' },
      };
    case 'latency':
      return {
        title: experiment.title,
        labels,
        datasets: [
          ...METHODS.map((method) => ({
            label: `${method} msg/s`,
            data: series(method, (r) => r.throughput),
            type: 'bar' as const,
            axis: 'y' as const,
          })),
          ...METHODS.map((method, i) => ({
            label: `${method} avg latency ms`,
            data: series(method, (r) => r.avgLatencyMs),
            type: 'line' as const,
            axis: 'y1' as const,
            color: i,
          })),
        ],
        axes: { y: 'throughput (msg/s)', y1: 'avg latency (ms)' },
      };
    case 'retries': {
      const retryLabels = RETRY_CHOICES.map((r) => `retries ${r}`);
      const pick = (retries: number, timeout: number): CellResult | undefined =>
        own.find((r) => r.cell.config.max_retries === retries && r.cell.config.ack_timeout_ms === timeout);
      return {
        title: experiment.title,
        labels: retryLabels,
        datasets: [
          ...TIMEOUT_CHOICES.map((timeout) => ({
            label: `delivered % (timeout ${timeout} ms)`,
            data: RETRY_CHOICES.map((retries) => {
              const r = pick(retries, timeout);
              return r ? round(deliveredPercent(r)) : Number.NaN;
            }),
            type: 'bar' as const,
            axis: 'y' as const,
          })),
          ...TIMEOUT_CHOICES.map((timeout, i) => ({
            label: `p99 ms (timeout ${timeout} ms)`,
            color: i,
            data: RETRY_CHOICES.map((retries) => {
              const r = pick(retries, timeout);
              return r ? round(r.p99LatencyMs) : Number.NaN;
            }),
            type: 'line' as const,
            axis: 'y1' as const,
          })),
        ],
        axes: { y: 'delivered %', y1: 'p99 latency (ms)' },
      };
    }
    case 'methods': {
      const of = (method: ChatMethod, value: (r: CellResult) => number): number => {
        const r = own.find((x) => x.cell.method === method);
        return r ? round(value(r)) : Number.NaN;
      };
      return {
        title: experiment.title,
        labels: [...METHODS],
        datasets: [
          {
            label: 'delivered %',
            data: METHODS.map((m) => of(m, deliveredPercent)),
            type: 'bar',
            axis: 'y',
          },
          {
            label: 'avg latency ms',
            data: METHODS.map((m) => of(m, (r) => r.avgLatencyMs)),
            type: 'bar',
            axis: 'y1',
          },
          {
            label: 'p99 latency ms',
            data: METHODS.map((m) => of(m, (r) => r.p99LatencyMs)),
            type: 'bar',
            axis: 'y1',
          },
        ],
        axes: { y: 'delivered %', y1: 'latency (ms)' },
      };
    }
  }
}

/** The console table: every experiment's rows under its title. */
export function consoleTable(experiments: Experiment[], results: CellResult[]): string {
  return experiments
    .map((experiment) => {
      const own = results.filter((r) => r.cell.experiment === experiment.id);
      return `${experiment.title}\n${markdownTable(own)}\n${reading(experiment, own)}`;
    })
    .join('\n\n');
}
