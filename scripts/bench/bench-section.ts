/**
 * The contract between the bench runner (`bench.ts`) and its sections: a section measures one part of
 * the product and returns named figures; the runner orders sections, cleans up after them, prints
 * the table and writes `artifacts/bench.json`. Add a benchmark by adding a file that exports a
 * `BenchSection` and listing it in `bench.ts`.
 */

/** A goal a figure should meet; `of: 'ratio'` applies it to the figure divided by its baseline. */
export interface BenchTarget {
  op: '>=' | '<=' | '=';
  value: number;
  of?: 'value' | 'ratio';
}

/** One measured figure. */
export interface BenchResult {
  /** `<section>.<metric>`, e.g. `pipeline.end_to_end`; later sections look results up by it. */
  name: string;
  value: number;
  unit: string;
  /** What the figure is compared with; the ratio is `value / baseline.value`. */
  baseline?: { name: string; value: number };
  targets?: BenchTarget[];
  /** A short remark shown under the table (how it was measured, what was off). */
  note?: string;
}

export interface BenchContext {
  natsUrl: string;
  databaseUrl: string;
  /** A progress line on stderr, prefixed with the section and the time since the start. */
  log(message: string): void;
  /** A result of a section that ran earlier in this run, or undefined. */
  result(name: string): BenchResult | undefined;
  /**
   * Registers a cleanup (delete a stream, drop a schema, stop a process). The runner runs them last
   * registered first in its `finally` after the section, and on SIGINT/SIGTERM; a failing cleanup is
   * logged and does not stop the others.
   */
  defer(description: string, cleanup: () => unknown): void;
}

export interface BenchSection {
  /** Used by `--only` and as the prefix of its results' names. */
  name: string;
  description: string;
  run(context: BenchContext): Promise<BenchResult[]>;
}

/** Thrown by a section that cannot run here (e.g. a service is not built); not a failure. */
export class BenchSkipped extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'BenchSkipped';
  }
}

export function ratioOf(result: BenchResult): number | undefined {
  return result.baseline && result.baseline.value > 0 ? result.value / result.baseline.value : undefined;
}

/** Whether `result` meets `target`; undefined when the target cannot be judged (no baseline). */
export function meets(result: BenchResult, target: BenchTarget): boolean | undefined {
  const actual = target.of === 'ratio' ? ratioOf(result) : result.value;
  if (actual === undefined || Number.isNaN(actual)) return undefined;
  switch (target.op) {
    case '>=':
      return actual >= target.value;
    case '<=':
      return actual <= target.value;
    case '=':
      return actual === target.value;
  }
}

/** Events (or messages) per second for `count` over `elapsedMs`. */
export function perSecond(count: number, elapsedMs: number): number {
  return elapsedMs > 0 ? (count / elapsedMs) * 1_000 : Number.NaN;
}

/** The environment every benched service gets: the run's servers, its own namespace and schema, quiet logs. */
export function serviceEnv(context: BenchContext, namespace: string): Record<string, string> {
  return {
    NATS_URL: context.natsUrl,
    DATABASE_URL: context.databaseUrl,
    NATS_NAMESPACE: namespace,
    DB_SCHEMA: namespace,
    LOG_LEVEL: 'warn',
  };
}
