import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

import { freePort } from './names.js';
import { waitFor } from './wait.js';

/** The product's services, by their folder under `apps/`. */
export type ServiceName = 'publisher' | 'aggregator' | 'chat-gateway' | 'lock-service' | 'cache-service';

/** The repository root (tests run from it). */
export const ROOT = process.cwd();

/**
 * One of the product's services running as a real process from the build output (`npm run build`),
 * so tests can SIGKILL and restart it. Its output is kept and shown when a test fails to start it.
 */
export class ServiceProcess {
  /** Every child still running: killed when the test process exits, so none outlives a failed test. */
  private static readonly running = new Set<ChildProcess>();
  static {
    process.once('exit', () => {
      for (const child of ServiceProcess.running) child.kill('SIGKILL');
    });
  }

  private child?: ChildProcess;
  private output: string[] = [];
  private exited?: Promise<number | null>;

  constructor(
    readonly app: ServiceName,
    readonly env: Record<string, string>,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.env.PORT}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the process and waits until `/health` answers 200. */
  async start(timeoutMs = 30_000): Promise<this> {
    const entry = resolve(ROOT, `dist/apps/${this.app}/src/main.js`);
    if (!existsSync(entry)) throw new Error(`${entry} is missing: run npm run build first`);
    const child = spawn(process.execPath, [entry], {
      env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    ServiceProcess.running.add(child);
    this.exited = new Promise((done) =>
      child.once('exit', (code) => {
        ServiceProcess.running.delete(child);
        done(code);
      }),
    );
    const keep = (chunk: Buffer): void => {
      this.output.push(chunk.toString());
      if (this.output.length > 400) this.output.splice(0, 100);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    try {
      await waitFor(
        async () => {
          if (child.exitCode !== null || child.signalCode !== null) {
            throw new Error(`exited with ${child.exitCode ?? child.signalCode}`);
          }
          const response = await fetch(`${this.url}/health`).catch(() => undefined);
          return response?.status === 200;
        },
        { timeoutMs, description: `${this.app} healthy` },
      );
    } catch (error) {
      throw new Error(`${this.app} did not start: ${String(error)}\n${this.logs()}`);
    }
    return this;
  }

  /** Sends `signal` and waits for the exit (SIGKILL: the process gets no chance to clean up). */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null)
      return this.child?.exitCode ?? null;
    this.child.kill(signal);
    return (await this.exited) ?? null;
  }

  /**
   * Graceful stop: SIGTERM, then waits for the exit code; past `timeoutMs` (if given) the process is
   * killed with SIGKILL and the result is null.
   */
  async stop(timeoutMs?: number): Promise<number | null> {
    if (timeoutMs === undefined) return this.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((done) => (timer = setTimeout(() => done('timeout'), timeoutMs)));
    try {
      const code = await Promise.race([this.kill('SIGTERM'), timedOut]);
      if (code !== 'timeout') return code;
      await this.kill('SIGKILL');
      return null;
    } finally {
      clearTimeout(timer);
    }
  }

  logs(): string {
    return this.output.join('').slice(-8_000);
  }
}

/**
 * Starts one process of `app` per environment, each on a free port of its own (unless the environment
 * names one), all together, and waits until every one is healthy. When one fails to start, all are
 * killed and the error is thrown: no replica outlives a failed start.
 */
export async function startReplicas(
  app: ServiceName,
  envs: Record<string, string>[],
  timeoutMs = 60_000,
): Promise<ServiceProcess[]> {
  const replicas: ServiceProcess[] = [];
  for (const env of envs) {
    replicas.push(new ServiceProcess(app, { PORT: String(await freePort()), ...env }));
  }
  try {
    await Promise.all(replicas.map((replica) => replica.start(timeoutMs)));
  } catch (error) {
    await Promise.all(replicas.map((replica) => replica.kill()));
    throw error;
  }
  return replicas;
}
