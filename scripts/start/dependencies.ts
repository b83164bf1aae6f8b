import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { isRunning, pipeLines, spawned, terminate } from './child-process.js';
import { StartupError } from './errors.js';
import type { LineSink } from './output.js';
import type { EmbeddedPostgresOptions, PostgresHostMessage } from './postgres-host.js';
import { type Endpoint, endpointOf, isLoopback, tcpAnswers } from './probe.js';

/** A server the apps need: one that was already running, or one `npm start` started and stops. */
export interface Dependency {
  /** `NATS` or `Postgres`. */
  readonly name: string;
  /** The URL handed to the apps. */
  readonly url: string;
  /** Set when `npm start` runs the server: its data directory, relative to the repository. */
  readonly embeddedDataDir?: string;
  /** Stops the server if `npm start` started it; resolves once it is gone. */
  stop(): Promise<void>;
  /** Asks a server `npm start` started to stop, without waiting (forced exit). */
  abandon(): void;
}

/** What starting a dependency needs from `npm start`. */
export interface DependencyContext {
  /** The repository root; embedded servers keep their data under `.data/`. */
  readonly root: string;
  /** Receives the output of the servers started. */
  readonly output: LineSink;
  readonly notice: (message: string) => void;
  /** Aborts a start in progress (Ctrl-C): what was spawned is stopped and the call rejects. */
  readonly signal: AbortSignal;
}

export const NATS_NOT_FOUND =
  'nats-server not found on PATH: install it (Debian/Ubuntu: apt-get install nats-server; macOS: brew install nats-server) or set NATS_URL';

const NATS_PORT = 4222;
const POSTGRES_PORT = 5432;
const EMBEDDED_POSTGRES = { user: 'postgres', password: 'postgres', database: 'postgres' };
const POSTGRES_HOST_ENTRY = fileURLToPath(new URL('./postgres-host.js', import.meta.url));
const NATS_START_TIMEOUT_MS = 15_000;
// the first run initialises the cluster (initdb), which takes a few seconds on a slow disk
const POSTGRES_START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 30_000;

/**
 * NATS at `url` (comma-separated servers) when any of them answers TCP; otherwise, when `url` names
 * one server on this machine, a `nats-server -js` on that port with its store in `.data/nats`.
 */
export async function ensureNats(url: string, context: DependencyContext): Promise<Dependency> {
  const endpoints = url
    .split(',')
    .filter((server) => server.trim() !== '')
    .map((server) => endpointOf(server, NATS_PORT));
  for (const endpoint of endpoints) {
    if (await tcpAnswers(endpoint)) return existing('NATS', url);
  }
  const [endpoint] = endpoints;
  if (endpoints.length !== 1 || !isLoopback(endpoint.host)) {
    throw new StartupError(
      `NATS does not answer at ${url}; npm start runs its own nats-server only on 127.0.0.1`,
    );
  }
  const dataDir = dataDirectory(context.root, 'nats');
  const local = { host: '127.0.0.1', port: endpoint.port };
  context.notice(
    `nothing answers on ${local.host}:${local.port}: starting nats-server (store in ${relative(context.root, dataDir)})`,
  );
  const server = spawn('nats-server', ['-js', '-a', local.host, '-p', String(local.port), '-sd', dataDir], {
    cwd: context.root,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    await spawned(server);
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT')
      throw new StartupError(NATS_NOT_FOUND);
    throw error;
  }
  pipeLines(server, 'nats', context.output);
  try {
    await untilListening(server, local, context.signal);
  } catch (error) {
    await terminate(server, STOP_TIMEOUT_MS);
    throw error;
  }
  return embedded('NATS', `nats://${local.host}:${local.port}`, relative(context.root, dataDir), server);
}

/**
 * Postgres at `url` when it answers TCP; otherwise, when `url` is on this machine, an embedded
 * Postgres on that port with its cluster in `.data/postgres` (initialised on first use), reached as
 * `postgres://postgres:postgres@127.0.0.1:<port>/postgres`.
 */
export async function ensurePostgres(url: string, context: DependencyContext): Promise<Dependency> {
  const endpoint = endpointOf(url, POSTGRES_PORT);
  if (await tcpAnswers(endpoint)) return existing('Postgres', url);
  if (!isLoopback(endpoint.host)) {
    throw new StartupError(
      `Postgres does not answer at ${endpoint.host}:${endpoint.port}; npm start embeds one only on 127.0.0.1`,
    );
  }
  const dataDir = dataDirectory(context.root, 'postgres');
  if (process.getuid?.() === 0) allowTraversal(dirname(dataDir));
  const options: EmbeddedPostgresOptions = { dataDir, port: endpoint.port, ...EMBEDDED_POSTGRES };
  const initialised = existsSync(join(dataDir, 'PG_VERSION'));
  context.notice(
    `nothing answers on 127.0.0.1:${endpoint.port}: ${initialised ? 'starting' : 'initialising'} embedded Postgres in ${relative(context.root, dataDir)}`,
  );
  const host = spawn(process.execPath, [POSTGRES_HOST_ENTRY], {
    cwd: context.root,
    detached: true,
    env: { ...process.env, EMBEDDED_POSTGRES_OPTIONS: JSON.stringify(options) },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  pipeLines(host, 'postgres', context.output);
  try {
    await untilReported(host, context.signal);
  } catch (error) {
    await terminate(host, STOP_TIMEOUT_MS);
    throw error;
  }
  const { user, password, database } = EMBEDDED_POSTGRES;
  const embeddedUrl = `postgres://${user}:${password}@127.0.0.1:${endpoint.port}/${database}`;
  return embedded('Postgres', embeddedUrl, relative(context.root, dataDir), host);
}

/** `.data/<name>` under `root`, creating `.data` (not `<name>`: the server creates that with its own mode). */
function dataDirectory(root: string, name: string): string {
  const parent = join(root, '.data');
  mkdirSync(parent, { recursive: true });
  return join(parent, name);
}

// as root, Postgres runs as the `postgres` user, which must be able to reach its data directory
function allowTraversal(directory: string): void {
  const { mode } = statSync(directory);
  if ((mode & 0o001) === 0) chmodSync(directory, (mode & 0o7777) | 0o001);
}

function existing(name: string, url: string): Dependency {
  return { name, url, stop: () => Promise.resolve(), abandon: () => undefined };
}

function embedded(name: string, url: string, dataDir: string, server: ChildProcess): Dependency {
  return {
    name,
    url,
    embeddedDataDir: dataDir,
    stop: async () => {
      await terminate(server, STOP_TIMEOUT_MS);
    },
    abandon: () => {
      if (isRunning(server)) server.kill('SIGTERM');
    },
  };
}

/** Waits until `server` accepts connections on `endpoint`; fails when it exits, times out or `signal` aborts. */
async function untilListening(server: ChildProcess, endpoint: Endpoint, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + NATS_START_TIMEOUT_MS;
  for (;;) {
    if (!isRunning(server))
      throw new StartupError(`nats-server exited with code ${server.exitCode} (see the [nats] lines above)`);
    if (await tcpAnswers(endpoint)) return;
    if (Date.now() > deadline) {
      throw new StartupError(
        `nats-server did not listen on ${endpoint.host}:${endpoint.port} within ${NATS_START_TIMEOUT_MS / 1000} s`,
      );
    }
    await delay(200, undefined, { signal });
  }
}

/** Waits for the Postgres host to report ready; fails on its error report, its exit, a timeout or `signal`. */
function untilReported(host: ChildProcess, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () =>
        settle(
          new StartupError(`embedded Postgres did not start within ${POSTGRES_START_TIMEOUT_MS / 1000} s`),
        ),
      POSTGRES_START_TIMEOUT_MS,
    );
    const onMessage = (message: PostgresHostMessage): void =>
      settle('error' in message ? new StartupError(`embedded Postgres failed: ${message.error}`) : undefined);
    const onExit = (code: number | null): void =>
      settle(new StartupError(`embedded Postgres exited with code ${code} (see the [postgres] lines above)`));
    const onAbort = (): void => settle(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    function settle(error: Error | undefined): void {
      clearTimeout(timer);
      host.off('message', onMessage);
      host.off('exit', onExit);
      signal.removeEventListener('abort', onAbort);
      if (error) reject(error);
      else resolve();
    }
    host.on('message', onMessage);
    host.on('exit', onExit);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort);
  });
}
