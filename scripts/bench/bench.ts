/**
 * `npm run bench`: runs the benchmark sections in order, prints one table and writes
 * `artifacts/bench.json`. `--only baselines,pipeline` picks sections. A benchmark, not a test: it
 * exits 1 only when a section fails to run, never because a target was missed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { baselinesSection } from './baselines.js';
import { chatSection } from './chat.js';
import {
  buildJsonReport,
  busyMachineWarning,
  formatTable,
  missedTargets,
  type SectionOutcome,
} from './bench-report.js';
import { type BenchContext, type BenchResult, type BenchSection, BenchSkipped } from './bench-section.js';
import { ROOT, TEST_DATABASE_URL, TEST_NATS_URL } from '@lib/testing';
import { cacheSection } from './cache.js';
import { locksSection } from './locks.js';
import { pipelineSection } from './pipeline.js';
import { queueSection } from './queue.js';
import { scaleSection } from './scale.js';

/** Every section, in the order they run; later ones may compare themselves with earlier results. */
const SECTIONS: BenchSection[] = [
  baselinesSection,
  pipelineSection,
  scaleSection,
  locksSection,
  queueSection,
  cacheSection,
  chatSection,
];

const USAGE = `Usage: npm run bench [-- --only <section>[,<section>…]] [--out <file>]

Sections: ${SECTIONS.map((s) => `\n  ${s.name.padEnd(10)} ${s.description}`).join('')}

Options:
  --only <names>  run only these sections (comma-separated); default all
  --out <file>    where to write the JSON results (default artifacts/bench.json)
  -h, --help      show this help

NATS_URL and DATABASE_URL choose the servers (default nats://127.0.0.1:4222 and
postgres://postgres@127.0.0.1:5432/postgres). The pipeline section needs npm run build.`;

interface BenchOptions {
  sections: BenchSection[];
  out: string;
}

function parseBenchArgs(argv: string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: { only: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help === true) return 'help';
  let sections = SECTIONS;
  if (values.only !== undefined) {
    const names = values.only
      .split(',')
      .map((n) => n.trim())
      .filter((n) => n !== '');
    const unknown = names.filter((n) => !SECTIONS.some((s) => s.name === n));
    if (names.length === 0 || unknown.length > 0) {
      throw new Error(
        `--only takes section names among ${SECTIONS.map((s) => s.name).join(', ')}; got "${values.only}"`,
      );
    }
    sections = SECTIONS.filter((s) => names.includes(s.name));
  }
  return { sections, out: resolve(ROOT, values.out ?? 'artifacts/bench.json') };
}

const started = performance.now();

function progress(line: string): void {
  process.stderr.write(
    `[bench ${((performance.now() - started) / 1_000).toFixed(1).padStart(6)}s] ${line}\n`,
  );
}

/** Cleanups of the running section; also run when the bench is interrupted. */
const pendingCleanups: { description: string; cleanup: () => unknown }[] = [];

let cleaning: Promise<void> = Promise.resolve();

/** Runs the pending cleanups one at a time; a second caller (a signal) waits for the same run. */
function runCleanups(): Promise<void> {
  cleaning = cleaning.then(async () => {
    for (let next = pendingCleanups.pop(); next !== undefined; next = pendingCleanups.pop()) {
      try {
        await next.cleanup();
        progress(`cleanup: ${next.description}`);
      } catch (error) {
        progress(
          `cleanup failed: ${next.description}: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }
  });
  return cleaning;
}

let interrupted = false;
function onSignal(signal: NodeJS.Signals): void {
  if (interrupted) return;
  interrupted = true;
  progress(`${signal}: cleaning up before exit`);
  void runCleanups().finally(() => process.exit(130));
}

async function runSection(section: BenchSection, earlier: BenchResult[]): Promise<SectionOutcome> {
  const context: BenchContext = {
    natsUrl: process.env.NATS_URL ?? TEST_NATS_URL,
    databaseUrl: process.env.DATABASE_URL ?? TEST_DATABASE_URL,
    log: (message) => progress(`${section.name}: ${message}`),
    result: (name) => earlier.find((r) => r.name === name),
    defer: (description, cleanup) => pendingCleanups.push({ description, cleanup }),
  };
  const sectionStart = performance.now();
  const outcome = (
    status: SectionOutcome['status'],
    results: BenchResult[],
    reason?: string,
  ): SectionOutcome => ({
    name: section.name,
    description: section.description,
    status,
    durationMs: performance.now() - sectionStart,
    results,
    reason,
  });
  progress(`${section.name}: ${section.description}`);
  try {
    const results = await section.run(context);
    return outcome('ok', results);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    if (error instanceof BenchSkipped) {
      progress(`${section.name}: skipped: ${reason}`);
      return outcome('skipped', [], reason);
    }
    progress(`${section.name}: FAILED: ${error instanceof Error ? (error.stack ?? reason) : reason}`);
    return outcome('failed', [], reason);
  } finally {
    await runCleanups();
    globalThis.gc?.();
  }
}

async function main(): Promise<number> {
  let options: BenchOptions | 'help';
  try {
    options = parseBenchArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n\n${USAGE}\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (globalThis.gc === undefined)
    progress('note: run with node --expose-gc (npm run bench does) to collect between sections');
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const startedAt = new Date();
  const loadAtStart = loadavg();
  const busy = busyMachineWarning(loadAtStart);
  if (busy) progress(busy);
  const outcomes: SectionOutcome[] = [];
  for (const section of options.sections) {
    const earlier = outcomes.flatMap((o) => o.results);
    outcomes.push(await runSection(section, earlier));
  }
  const report = buildJsonReport(outcomes, loadAtStart, startedAt, new Date(), process.argv.slice(2));
  mkdirSync(dirname(options.out), { recursive: true });
  writeFileSync(options.out, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`\n${formatTable(outcomes)}\n`);
  const missed = missedTargets(outcomes);
  if (missed.length > 0)
    process.stdout.write(`\nTargets missed:\n${missed.map((m) => `  ${m}`).join('\n')}\n`);
  if (busy) process.stdout.write(`\n${busy}\n`);
  process.stdout.write(`\nResults written to ${options.out}\n`);
  return outcomes.some((o) => o.status === 'failed') ? 1 : 0;
}

process.exitCode = await main();
