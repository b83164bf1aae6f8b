/**
 * `npm run experiments -- [--url http://127.0.0.1:3002] [--messages 300] [--seed 42]`: seed 000's four
 * experiments run headless against a running chat gateway. See `--help` and experiment-plan.ts.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import cliProgress from 'cli-progress';
import type { ChatConfig } from '@lib/contracts';

import { runCell } from './cell-runner.js';
import { renderCharts } from './charts.js';
import { ChatSession, GatewayApi, GatewayUnreachableError } from './chat-session.js';
import {
  type CellResult,
  chartSpec,
  consoleTable,
  type ExperimentId,
  experimentPlan,
  type ExperimentOptions,
  parseExperimentArgs,
  resultsCsv,
  resultsMarkdown,
  USAGE,
  UsageError,
} from './experiment-plan.js';

/** Progress on stderr: a bar on a terminal, otherwise a line per finished cell. */
interface Progress {
  cell(label: string, settled: number): void;
  done(line: string): void;
  stop(): void;
}

function createProgress(totalCells: number, messages: number): Progress {
  let finished = 0;
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: 'cell {cells} [{bar}] {value}/{total} settled | {label}',
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(messages, 0, { cells: `1/${totalCells}`, label: '' });
    return {
      cell: (label, settled) => bar.update(settled, { label, cells: `${finished + 1}/${totalCells}` }),
      done: (line) => {
        finished += 1;
        bar.update(0, { label: line, cells: `${Math.min(finished + 1, totalCells)}/${totalCells}` });
      },
      stop: () => bar.stop(),
    };
  }
  return {
    cell: () => undefined,
    done: (line) => {
      finished += 1;
      process.stderr.write(`[${finished}/${totalCells}] ${line}\n`);
    },
    stop: () => undefined,
  };
}

async function main(options: ExperimentOptions): Promise<number> {
  const api = new GatewayApi(options.url);
  const original: ChatConfig = await api.config();
  const experiments = experimentPlan(options.only);
  const cells = experiments.flatMap((e) => e.cells);
  const tag = randomBytes(3).toString('hex');
  let interrupted = false;
  let restored = false;
  const restore = async (): Promise<void> => {
    if (restored) return;
    restored = true;
    await api.updateConfig(original);
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write(`\n${signal}: stopping, restoring the gateway's config…\n`);
    restore()
      .catch((error: unknown) => process.stderr.write(`could not restore the config: ${String(error)}\n`))
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  process.stderr.write(
    `${cells.length} cells × ${options.messages} messages against ${options.url}, seed ${options.seed}` +
      `${options.seedGiven ? '' : ' (random; pass --seed to repeat)'}\n`,
  );
  const startedAt = new Date();
  const started = performance.now();
  const results: CellResult[] = [];
  const sender = await ChatSession.open(options.url, `exp-A-${tag}`);
  let receiver: ChatSession | undefined;
  const progress = createProgress(cells.length, options.messages);
  try {
    receiver = await ChatSession.open(options.url, `exp-B-${tag}`);
    for (const cell of cells) {
      const label = `${cell.label} · ${cell.method}`;
      const result = await runCell(cell, {
        api,
        sender,
        receiver,
        messages: options.messages,
        window: options.window,
        seed: options.seed,
        progress: (settled) => progress.cell(label, settled),
        aborted: () => interrupted,
      });
      results.push(result);
      progress.done(
        `${label}: ${result.delivered}/${result.sent} delivered, ${result.retries} retries, ` +
          `p99 ${result.p99LatencyMs.toFixed(0)} ms, ${result.throughput.toFixed(0)} msg/s`,
      );
    }
  } finally {
    progress.stop();
    sender.close();
    receiver?.close();
    if (!interrupted) await restore();
  }

  const out = resolve(options.out);
  mkdirSync(out, { recursive: true });
  const chartFiles: Partial<Record<ExperimentId, string>> = {};
  if (options.charts) {
    const charts = experiments.map((experiment) => ({
      id: experiment.id,
      spec: chartSpec(experiment, results),
      path: join(out, `${experiment.id}.png`),
    }));
    await renderCharts(charts);
    for (const chart of charts) chartFiles[chart.id] = `${chart.id}.png`;
  }
  const summary = {
    url: options.url,
    messages: options.messages,
    window: options.window,
    seed: options.seed,
    startedAt: startedAt.toISOString(),
    elapsedMs: performance.now() - started,
  };
  writeFileSync(join(out, 'results.md'), resultsMarkdown(summary, experiments, results, chartFiles));
  writeFileSync(join(out, 'results.csv'), resultsCsv(results));
  process.stdout.write(`${consoleTable(experiments, results)}\n\n`);
  process.stderr.write(
    `wrote ${join(out, 'results.md')}, results.csv${options.charts ? ` and ${experiments.length} charts` : ''}` +
      `; the gateway's config is back to what it was\n`,
  );
  return 0;
}

let options: ExperimentOptions | 'help';
try {
  options = parseExperimentArgs(process.argv.slice(2), () => randomInt(2 ** 31));
} catch (error) {
  if (!(error instanceof UsageError)) throw error;
  process.stderr.write(`${error.message}\n\n${USAGE}\n`);
  process.exit(2);
}
if (options === 'help') {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
try {
  process.exitCode = await main(options);
} catch (error) {
  const message = error instanceof GatewayUnreachableError ? error.message : String(error);
  process.stderr.write(`experiments failed: ${message}\n`);
  process.exitCode = 1;
}
process.exit(process.exitCode);
