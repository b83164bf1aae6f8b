import { cpus, loadavg, release, totalmem } from 'node:os';

import { type BenchResult, type BenchTarget, meets, ratioOf } from './bench-section.js';

export interface SectionOutcome {
  name: string;
  description: string;
  status: 'ok' | 'failed' | 'skipped';
  durationMs: number;
  results: BenchResult[];
  /** Why it failed or was skipped. */
  reason?: string;
}

const grouped = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return 'n/a';
  if (Math.abs(value) >= 100 || Number.isInteger(value)) return grouped.format(value);
  return value.toFixed(Math.abs(value) >= 10 ? 1 : 2);
}

function formatTarget(result: BenchResult, target: BenchTarget): string {
  const op = target.op === '>=' ? '≥' : target.op === '<=' ? '≤' : '=';
  const subject = target.of === 'ratio' ? 'ratio ' : '';
  const verdict = meets(result, target);
  const mark = verdict === undefined ? '?' : verdict ? 'ok' : 'MISSED';
  return `${subject}${op} ${formatNumber(target.value)} ${mark}`;
}

/**
 * A warning when other work kept the CPUs busy as the run started (1-minute load average above the
 * number of CPUs): the figures then say more about the neighbours than about the code.
 */
export function busyMachineWarning(loadAtStart: number[]): string | undefined {
  const [oneMinute] = loadAtStart;
  const count = cpus().length;
  return oneMinute > count
    ? `warning: the 1-minute load average was ${oneMinute.toFixed(2)} on ${count} CPUs when the bench started; ` +
        'other processes competed for the CPUs, so compare figures only within this run'
    : undefined;
}

/** The results as an aligned text table, with notes and the sections that did not run underneath. */
export function formatTable(outcomes: SectionOutcome[]): string {
  const header = ['name', 'value', 'unit', 'baseline', 'ratio', 'target'];
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const outcome of outcomes) {
    for (const result of outcome.results) {
      const ratio = ratioOf(result);
      rows.push([
        result.name,
        formatNumber(result.value),
        result.unit,
        result.baseline ? `${formatNumber(result.baseline.value)} (${result.baseline.name})` : '',
        ratio === undefined ? '' : ratio.toFixed(2),
        (result.targets ?? []).map((t) => formatTarget(result, t)).join(', '),
      ]);
      if (result.note) notes.push(`  ${result.name}: ${result.note}`);
    }
    if (outcome.status !== 'ok')
      notes.push(`  section ${outcome.name} ${outcome.status.toUpperCase()}: ${outcome.reason ?? ''}`);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const numeric = new Set([1, 4]);
  const line = (cells: string[]): string =>
    cells
      .map((cell, i) => (numeric.has(i) ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  const table = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
  return [...table, ...(notes.length > 0 ? ['', 'Notes:', ...notes] : [])].join('\n');
}

/** Every target that was judged and missed, as `name: target` lines. */
export function missedTargets(outcomes: SectionOutcome[]): string[] {
  return outcomes.flatMap((o) =>
    o.results.flatMap((r) =>
      (r.targets ?? []).filter((t) => meets(r, t) === false).map((t) => `${r.name}: ${formatTarget(r, t)}`),
    ),
  );
}

/** What `artifacts/bench.json` holds: the machine, the run and every figure with its verdicts. */
export function buildJsonReport(
  outcomes: SectionOutcome[],
  loadAtStart: number[],
  startedAt: Date,
  finishedAt: Date,
  argv: string[],
): object {
  const processors = cpus();
  return {
    started_at: startedAt.toISOString(),
    finished_at: finishedAt.toISOString(),
    argv,
    machine: {
      cpus: processors.length,
      cpu_model: processors[0]?.model ?? 'unknown',
      total_memory_bytes: totalmem(),
      load_average_at_start: loadAtStart,
      load_average_at_end: loadavg(),
      node: process.version,
      platform: `${process.platform} ${release()}`,
    },
    sections: outcomes.map((o) => ({
      name: o.name,
      description: o.description,
      status: o.status,
      reason: o.reason,
      duration_ms: Math.round(o.durationMs),
      results: o.results.map((r) => ({
        name: r.name,
        value: r.value,
        unit: r.unit,
        baseline: r.baseline,
        ratio: ratioOf(r),
        targets: r.targets?.map((t) => ({ ...t, of: t.of ?? 'value', met: meets(r, t) ?? null })),
        note: r.note,
      })),
    })),
  };
}
