import { type ChildProcess, spawn } from 'node:child_process';

import { isRunning, pipeLines, terminate } from './child-process.js';
import type { LineSink } from './output.js';

/** A process to keep running. */
export interface ProcessSpec {
  /** Unique name, used in output tags and notices. */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

/** How a `Supervisor` restarts and stops; every duration in milliseconds. */
export interface SupervisorOptions {
  /** Receives every line the children write. */
  readonly output: LineSink;
  /** Receives the supervisor's own notices (a child exited, when it restarts). */
  readonly notice: (message: string) => void;
  /** First restart delay; doubles after each crash. Default 500. */
  readonly initialBackoffMs?: number;
  /** Longest restart delay. Default 10 000. */
  readonly maxBackoffMs?: number;
  /** A child that ran this long before crashing restarts after the initial delay again. Default 30 000. */
  readonly resetAfterMs?: number;
  /** How long `stop` waits after SIGTERM before SIGKILL. Default 15 000. */
  readonly stopTimeoutMs?: number;
}

interface Supervised {
  readonly spec: ProcessSpec;
  process?: ChildProcess;
  startedAt: number;
  backoffMs: number;
  restarts: number;
  restartTimer?: NodeJS.Timeout;
}

/**
 * Keeps child processes running: a child that exits without being asked to is restarted after an
 * exponential backoff (0.5 s, 1 s, 2 s … 10 s), which starts over once the child has run for 30 s.
 * After `stop` nothing restarts. Children run in their own process group, so a Ctrl-C in the terminal
 * reaches only the parent, which decides the order in which things stop.
 */
export class Supervisor {
  private readonly children = new Map<string, Supervised>();
  private stopping = false;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly resetAfterMs: number;
  private readonly stopTimeoutMs: number;

  constructor(private readonly options: SupervisorOptions) {
    this.initialBackoffMs = options.initialBackoffMs ?? 500;
    this.maxBackoffMs = options.maxBackoffMs ?? 10_000;
    this.resetAfterMs = options.resetAfterMs ?? 30_000;
    this.stopTimeoutMs = options.stopTimeoutMs ?? 15_000;
  }

  /** Starts `spec` and keeps it running until `stop`. */
  start(spec: ProcessSpec): void {
    if (this.stopping) throw new Error(`cannot start ${spec.name}: the supervisor is stopping`);
    if (this.children.has(spec.name)) throw new Error(`${spec.name} is already supervised`);
    const child: Supervised = { spec, startedAt: 0, backoffMs: this.initialBackoffMs, restarts: 0 };
    this.children.set(spec.name, child);
    this.launch(child);
  }

  /** How many times the child `name` was restarted after a crash. */
  restarts(name: string): number {
    return this.children.get(name)?.restarts ?? 0;
  }

  /** Whether the child `name` is running right now (false while it waits to restart). */
  isRunning(name: string): boolean {
    const child = this.children.get(name)?.process;
    return child !== undefined && isRunning(child);
  }

  /**
   * Stops every child for good: SIGTERM, up to `stopTimeoutMs` for a graceful exit, then SIGKILL.
   * Resolves once all have exited.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      [...this.children.values()].map(async (child) => {
        clearTimeout(child.restartTimer);
        if (!child.process) return;
        const killed = await terminate(child.process, this.stopTimeoutMs);
        if (killed)
          this.options.notice(
            `${child.spec.name} did not stop within ${this.stopTimeoutMs / 1000} s: killed`,
          );
      }),
    );
  }

  /** Kills every child at once with SIGKILL, for a forced exit; nothing restarts afterwards. */
  kill(): void {
    this.stopping = true;
    for (const child of this.children.values()) {
      clearTimeout(child.restartTimer);
      if (child.process && isRunning(child.process)) child.process.kill('SIGKILL');
    }
  }

  private launch(child: Supervised): void {
    const { spec } = child;
    const running = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.process = running;
    child.startedAt = Date.now();
    pipeLines(running, spec.name, this.options.output);
    let handled = false;
    const onEnd = (reason: string): void => {
      if (handled) return;
      handled = true;
      this.onExit(child, reason);
    };
    running.once('exit', (code, signal) =>
      onEnd(signal ? `was killed by ${signal}` : `exited with code ${code}`),
    );
    // a failed spawn emits 'error' and may never emit 'exit'
    running.once('error', (error) => {
      if (running.pid === undefined) onEnd(`could not start: ${error.message}`);
    });
  }

  private onExit(child: Supervised, reason: string): void {
    if (this.stopping) return;
    const ranMs = Date.now() - child.startedAt;
    if (ranMs >= this.resetAfterMs) child.backoffMs = this.initialBackoffMs;
    const delayMs = child.backoffMs;
    child.backoffMs = Math.min(child.backoffMs * 2, this.maxBackoffMs);
    this.options.notice(
      `${child.spec.name} ${reason} after ${formatSeconds(ranMs)}; restarting in ${formatSeconds(delayMs)}`,
    );
    child.restartTimer = setTimeout(() => {
      if (this.stopping) return;
      child.restarts += 1;
      this.launch(child);
    }, delayMs);
  }
}

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}
