import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { freePort } from './names.js';
import { waitFor } from './wait.js';

/**
 * A private `nats-server -js` on a spare loopback port with its own store directory, for tests that
 * stop and restart the broker without disturbing anything else on the machine.
 */
export class NatsServerProcess {
  private child?: ChildProcess;
  private readonly storeDir = mkdtempSync(join(tmpdir(), 'nats-test-'));
  private output = '';
  port = 0;

  /**
   * `config`: a configuration file (its listen address, monitoring port and store directory are
   * overridden with private ones); `env`: the server's environment, for the variables it references.
   */
  constructor(private readonly options: { config?: string; env?: Record<string, string> } = {}) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    if (this.port === 0) this.port = await freePort();
    const config = this.options.config ? ['-c', this.options.config, '-m', String(await freePort())] : [];
    const child = spawn(
      'nats-server',
      [...config, '-js', '-a', '127.0.0.1', '-p', String(this.port), '-sd', this.storeDir],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', ...this.options.env } },
    );
    this.child = child;
    this.output = '';
    const keep = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString()).slice(-20_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`nats-server exited: ${this.output}`);
        return portOpen(this.port);
      },
      { timeoutMs: 10_000, description: `nats-server on ${this.port}` },
    );
    return this;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((done) => child.once('exit', done));
    child.kill('SIGTERM');
    await exited;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** What the server printed lately (permission violations, errors). */
  logs(): string {
    return this.output;
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}

export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
