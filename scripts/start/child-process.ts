import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

import type { LineSink } from './output.js';

/** Whether `child` was spawned and has not exited yet. */
export function isRunning(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

/** Resolves once `child` has exited (at once when it is not running). */
export function exited(child: ChildProcess): Promise<void> {
  if (!isRunning(child)) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Resolves once `child` is spawned; rejects with the spawn error (`ENOENT` when the command is not on PATH). */
export function spawned(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
}

/**
 * Sends `signal` and waits up to `timeoutMs` for the exit, then sends SIGKILL; resolves once the
 * process is gone, with whether it had to be killed.
 */
export async function terminate(
  child: ChildProcess,
  timeoutMs: number,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<boolean> {
  if (!isRunning(child)) return false;
  const gone = exited(child);
  child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const late = await Promise.race([
    gone.then(() => false),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs))),
  ]);
  clearTimeout(timer);
  if (!late) return false;
  child.kill('SIGKILL');
  await gone;
  return true;
}

/** Hands every line `child` writes on stdout and stderr to `sink` under `source`. */
export function pipeLines(child: ChildProcess, source: string, sink: LineSink): void {
  if (child.stdout)
    createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) =>
      sink(source, 'stdout', line),
    );
  if (child.stderr)
    createInterface({ input: child.stderr, crlfDelay: Infinity }).on('line', (line) =>
      sink(source, 'stderr', line),
    );
}
