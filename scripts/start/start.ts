/**
 * `npm start`: the whole system on one machine. Uses NATS and Postgres where they already answer
 * (NATS_URL, DATABASE_URL), otherwise runs its own (nats-server with its store in `.data/nats`, an
 * embedded Postgres in `.data/postgres`); runs the migrations once; then runs every built service
 * under a `Supervisor` and prints where each one answers once all are healthy. Ctrl-C stops the
 * services, then the servers it started; a second Ctrl-C exits at once.
 */
import 'reflect-metadata';

import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { commonEnv, ConfigError, loadConfig } from '@lib/config';
import { migrate } from '@lib/persistence';

import { type AppInstance, planApps } from './apps.js';
import { type Dependency, ensureNats, ensurePostgres } from './dependencies.js';
import { describeError, redactUrl, StartupError } from './errors.js';
import { TaggedOutput } from './output.js';
import { httpStatus, tcpAnswers } from './probe.js';
import { Supervisor } from './supervisor.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const startEnv = {
  NATS_URL: commonEnv.NATS_URL,
  DATABASE_URL: commonEnv.DATABASE_URL,
  DB_SCHEMA: commonEnv.DB_SCHEMA,
};
const HEALTH_POLL_MS = 500;
const PROGRESS_EVERY_MS = 5_000;
// npm forwards the terminal's Ctrl-C to the script as well: a repeat this soon is the same keypress
const REPEATED_SIGNAL_MS = 1_000;

const output = new TaggedOutput();
const notice = (message: string): void => output.notice(message);
const aborter = new AbortController();
const dependencies: Dependency[] = [];
const supervisor = new Supervisor({ output: output.line, notice });
const startedAt = Date.now();

const startup = bringUp();
let firstSignalAt: number | undefined;
let stopping: Promise<void> | undefined;

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => onSignal(signal));
// last resort when this process dies unexpectedly: its children run in their own process groups
process.on('exit', () => {
  supervisor.kill();
  for (const dependency of dependencies) dependency.abandon();
});

startup.catch((error: unknown) => {
  if (aborter.signal.aborted) return;
  const expected = error instanceof StartupError || error instanceof ConfigError;
  // an expected problem is explained by its message; anything else needs its stack to be fixed
  output.problem(
    expected || !(error instanceof Error) ? describeError(error) : (error.stack ?? describeError(error)),
  );
  stopAndExit(1);
});

/** Finds or starts NATS and Postgres, migrates, starts the services and waits until all are healthy. */
async function bringUp(): Promise<void> {
  const config = loadConfig(startEnv);
  const { instances, notBuilt } = planApps(ROOT);
  if (notBuilt.length > 0) notice(`not built, skipped: ${notBuilt.map((app) => app.name).join(', ')}`);
  if (instances.length === 0) throw new StartupError('no service is built: run npm run build');
  for (const instance of instances) {
    if (await tcpAnswers({ host: '127.0.0.1', port: instance.port })) {
      throw new StartupError(
        `port ${instance.port} for ${instance.name} is already in use (is npm start running elsewhere?)`,
      );
    }
  }

  const context = { root: ROOT, output: output.line, notice, signal: aborter.signal };
  const nats = await ensureNats(config.NATS_URL, context);
  dependencies.push(nats);
  notice(`NATS: ${describeDependency(nats)}`);
  const postgres = await ensurePostgres(config.DATABASE_URL, context);
  dependencies.push(postgres);
  notice(`Postgres: ${describeDependency(postgres)}`);

  await runMigrations(postgres.url, config.DB_SCHEMA);
  aborter.signal.throwIfAborted();

  for (const instance of instances) {
    supervisor.start({
      name: instance.name,
      command: process.execPath,
      args: [instance.entry],
      cwd: ROOT,
      env: {
        ...process.env,
        NATS_URL: nats.url,
        DATABASE_URL: postgres.url,
        PORT: String(instance.port),
        MIGRATE_ON_START: 'false',
      },
    });
  }
  await untilHealthy(instances);
  printSummary(
    instances,
    notBuilt.map((app) => app.name),
  );
}

async function runMigrations(url: string, schema: string): Promise<void> {
  let applied: string[];
  try {
    applied = await migrate({ url, schema, poolSize: 1, applicationName: 'start' });
  } catch (error) {
    throw new StartupError(
      `migrations failed on ${redactUrl(url)} (schema ${schema}): ${describeError(error)}`,
    );
  }
  notice(
    applied.length === 0
      ? `migrations: schema ${schema} is up to date`
      : `migrations: applied ${applied.join(', ')}`,
  );
}

/** Polls every instance's `/health` until each answers 200, telling what it waits for every few seconds. */
async function untilHealthy(instances: AppInstance[]): Promise<void> {
  const pending = new Map(instances.map((instance) => [instance.name, instance]));
  const lastAnswer = new Map<string, number | string>();
  let lastProgressAt = 0;
  for (;;) {
    await Promise.all(
      [...pending.values()].map(async (instance) => {
        const answer = await httpStatus(`${baseUrl(instance.port)}/health`);
        if (answer === 200 && pending.delete(instance.name)) {
          notice(`${instance.name} is healthy after ${seconds(Date.now() - startedAt)}`);
        }
        lastAnswer.set(instance.name, answer);
      }),
    );
    if (pending.size === 0) return;
    if (Date.now() - lastProgressAt >= PROGRESS_EVERY_MS) {
      lastProgressAt = Date.now();
      for (const name of pending.keys()) {
        const answer = lastAnswer.get(name);
        const restarts = supervisor.restarts(name);
        const detail = [
          typeof answer === 'number' ? `HTTP ${answer}` : answer,
          restarts > 0 ? `restarted ${restarts}×` : '',
        ];
        notice(`waiting for ${name}... (${detail.filter(Boolean).join(', ')})`);
      }
    }
    await delay(HEALTH_POLL_MS, undefined, { signal: aborter.signal });
  }
}

function printSummary(instances: AppInstance[], notBuilt: string[]): void {
  const rows: [string, string][] = instances.map((instance) => {
    const url = baseUrl(instance.port);
    return [instance.name, `${url}   docs ${url}/docs   health ${url}/health`];
  });
  for (const dependency of dependencies) rows.push([dependency.name, describeDependency(dependency)]);
  if (notBuilt.length > 0) rows.push(['not built', notBuilt.join(', ')]);
  const width = Math.max(...rows.map(([name]) => name.length));
  const rule = '─'.repeat(72);
  output.block([
    '',
    rule,
    `  ${output.bold(`Everything is up after ${seconds(Date.now() - startedAt)}`)}`,
    ...rows.map(([name, text]) => `  ${name.padEnd(width)}   ${text}`),
    '  Ctrl-C stops everything.',
    rule,
    '',
  ]);
}

function describeDependency(dependency: Dependency): string {
  return dependency.embeddedDataDir === undefined
    ? `${redactUrl(dependency.url)} (existing server)`
    : `${dependency.url} (embedded, started by npm start, data in ${dependency.embeddedDataDir})`;
}

function onSignal(signal: NodeJS.Signals): void {
  const now = Date.now();
  if (firstSignalAt === undefined) {
    firstSignalAt = now;
    notice(`${signal}: stopping (press Ctrl-C again to exit at once)`);
    stopAndExit(0);
  } else if (now - firstSignalAt >= REPEATED_SIGNAL_MS) {
    notice(`${signal} again: exiting now`);
    process.exit(130);
  }
}

/** Stops the services, then the servers npm start started (Postgres before NATS), then exits with `code`. */
function stopAndExit(code: number): void {
  // after a start-up failure, the first Ctrl-C already counts as the second: exit at once
  firstSignalAt ??= 0;
  stopping ??= (async () => {
    aborter.abort();
    // a dependency half-started when the stop came stops itself before `startup` settles
    await startup.catch(() => undefined);
    await supervisor.stop();
    for (const dependency of [...dependencies].reverse()) {
      if (dependency.embeddedDataDir === undefined) continue;
      notice(`stopping embedded ${dependency.name}`);
      await dependency.stop();
    }
    if (dependencies.length > 0) notice('stopped');
    process.exit(code);
  })();
}

function baseUrl(port: number): string {
  const host = process.env.HOST;
  if (!host || host === '0.0.0.0' || host === '::') return `http://127.0.0.1:${port}`;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
