import { existsSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { resolve } from 'node:path';

import { dropSchema, freePort, ROOT, ServiceProcess, uniqueName } from '@lib/testing';
import pg from 'pg';

import { summarizeLatencies } from '../publish/load.js';
import {
  type BenchContext,
  type BenchResult,
  type BenchSection,
  BenchSkipped,
  perSecond,
  serviceEnv,
} from './bench-section.js';

/** Concurrent clients of the uncontended measure, each on its own resource (or advisory key). */
const CLIENTS = 32;
const WARM_UP_MS = 1_000;
const MEASURE_MS = 3_000;
/** Interleaved rounds of the three throughput measures; the median of each is reported. */
const ROUNDS = 3;
/** Unmeasured load on a fresh service first: JIT, its pool's connections and their plan caches. */
const SERVICE_WARM_UP_MS = 6_000;
/** Clients taking turns on one resource in the hand-off measure, and hand-offs measured. */
const CONTENDERS = 8;
const HANDOFFS = 400;
const STOP_TIMEOUT_MS = 10_000;

/**
 * The lock service against the database it stands on:
 * - uncontended: 32 clients, each acquiring and releasing its own resource over HTTP (keep-alive), as
 *   many pairs as they can; the baseline is the same done the rawest way, `pg_advisory_lock` and
 *   `pg_advisory_unlock` on 32 connections. The service is warmed up first, then the service and both
 *   baselines run in 3 interleaved rounds (machine drift hits all alike) and each reports its median;
 * - hand-off: 8 clients queue for one resource (`wait_ms`); the latency from a holder sending its
 *   release to the next waiter receiving its grant (matched by fencing token: grant t+1 follows the
 *   release of t), over 400 hand-offs.
 */
export const locksSection: BenchSection = {
  name: 'locks',
  description: 'lock-service acquire/release pairs vs raw pg_advisory_lock; contended hand-off latency',
  async run(context) {
    const entry = resolve(ROOT, 'dist/apps/lock-service/src/main.js');
    if (!existsSync(entry))
      throw new BenchSkipped(`${entry} is missing: the lock service is not built (npm run build)`);

    const schema = uniqueName('benchlocks');
    const service = new ServiceProcess('lock-service', {
      ...serviceEnv(context, schema),
      DB_POOL_SIZE: String(CLIENTS / 2),
      PORT: String(await freePort()),
    });
    context.defer(`drop schema ${schema}`, () => dropSchema(schema, context.databaseUrl));
    context.defer('stop the lock service', () => service.stop(STOP_TIMEOUT_MS));
    await service.start(60_000);
    const http = new LockHttpClient(service.url);
    context.defer('close the HTTP agent', () => http.close());

    const advisoryPair = await advisoryLocks(context);
    const durablePair = await durableCommits(context);
    const servicePair = uncontendedPairs(http);
    await pairsPerSecond(servicePair, SERVICE_WARM_UP_MS, 0);
    const rounds = { advisory: [] as number[], durable: [] as number[], service: [] as number[] };
    for (let round = 1; round <= ROUNDS; round++) {
      rounds.advisory.push(await pairsPerSecond(advisoryPair));
      rounds.durable.push(await pairsPerSecond(durablePair));
      rounds.service.push(await pairsPerSecond(servicePair));
      context.log(
        `round ${round}: advisory locks ${Math.round(rounds.advisory.at(-1)!)}, durable commits ` +
          `${Math.round(rounds.durable.at(-1)!)}, lock service ${Math.round(rounds.service.at(-1)!)} pairs/s`,
      );
    }
    const baseline = median(rounds.advisory);
    const durable = median(rounds.durable);
    const uncontended = median(rounds.service);
    const handoff = await measureHandoff(context, http);
    const shown = (values: number[]) => values.map(Math.round).join(', ');
    return [
      {
        name: 'locks.advisory_lock_pairs',
        value: baseline,
        unit: 'pairs/s',
        note: `raw pg_advisory_lock + pg_advisory_unlock, ${CLIENTS} connections, own key each; rounds ${shown(rounds.advisory)}`,
      },
      {
        name: 'locks.durable_commit_pairs',
        value: durable,
        unit: 'pairs/s',
        note: `raw INSERT + DELETE of one row, each its own durable commit, ${CLIENTS} connections: the floor of lock state that survives a Postgres crash; rounds ${shown(rounds.durable)}`,
      },
      {
        name: 'locks.uncontended_pairs_vs_durable',
        value: uncontended,
        unit: 'pairs/s',
        baseline: { name: 'locks.durable_commit_pairs', value: durable },
      },
      {
        name: 'locks.uncontended_pairs',
        value: uncontended,
        unit: 'pairs/s',
        baseline: { name: 'locks.advisory_lock_pairs', value: baseline },
        targets: [{ op: '>=', value: 0.3, of: 'ratio' }],
        note: `HTTP acquire + release, ${CLIENTS} clients on their own resource, one replica, median of ${ROUNDS} rounds of ${MEASURE_MS} ms (${shown(rounds.service)})`,
      },
      { name: 'locks.handoff_p50', value: handoff.p50, unit: 'ms' },
      {
        name: 'locks.handoff_p99',
        value: handoff.p99,
        unit: 'ms',
        targets: [{ op: '<=', value: 20 }],
        note: `release sent → next waiter's grant received, ${handoff.count} hand-offs among ${CONTENDERS} clients`,
      },
    ] satisfies BenchResult[];
  },
};

/** One acquire + release by `client` (0 … CLIENTS - 1); `round` counts that client's pairs. */
type Pair = (client: number, round: number) => Promise<void>;

/** Runs `pair` in `CLIENTS` loops: a warm-up, then counts the pairs completed within `measureMs`. */
async function pairsPerSecond(pair: Pair, warmUpMs = WARM_UP_MS, measureMs = MEASURE_MS): Promise<number> {
  let measuring = false;
  let stop = false;
  let pairs = 0;
  const loops = Array.from({ length: CLIENTS }, async (_, client) => {
    for (let round = 0; !stop; round++) {
      await pair(client, round);
      if (measuring && !stop) pairs++;
    }
  });
  await new Promise((done) => setTimeout(done, warmUpMs));
  measuring = true;
  const started = performance.now();
  await new Promise((done) => setTimeout(done, measureMs));
  stop = true;
  const elapsed = performance.now() - started;
  await Promise.all(loops);
  return perSecond(pairs, elapsed);
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
}

/** `pg_advisory_lock` + `pg_advisory_unlock` on a connection of its own per client. */
async function advisoryLocks(context: BenchContext): Promise<Pair> {
  const clients = await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      const client = new pg.Client({
        connectionString: context.databaseUrl,
        application_name: 'bench-locks',
      });
      await client.connect();
      return client;
    }),
  );
  context.defer('close the advisory-lock connections', () => Promise.all(clients.map((c) => c.end())));
  const base = Math.floor(Math.random() * 1e9);
  return async (i) => {
    const key = base + i;
    await clients[i].query({ name: 'lock', text: 'SELECT pg_advisory_lock($1)', values: [key] });
    await clients[i].query({ name: 'unlock', text: 'SELECT pg_advisory_unlock($1)', values: [key] });
  };
}

/**
 * What the disk allows: a lock kept in Postgres costs a durable commit to take and one to give back
 * (WAL flushed at each commit), which advisory locks — memory only, gone with the server — never pay.
 */
async function durableCommits(context: BenchContext): Promise<Pair> {
  const schema = uniqueName('benchcommit');
  const clients = await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      const client = new pg.Client({
        connectionString: context.databaseUrl,
        application_name: 'bench-locks',
      });
      await client.connect();
      return client;
    }),
  );
  context.defer('close the durable-commit connections', () => Promise.all(clients.map((c) => c.end())));
  await clients[0].query(`CREATE SCHEMA "${schema}"`);
  context.defer(`drop schema ${schema}`, () => dropSchema(schema, context.databaseUrl));
  await clients[0].query(`CREATE TABLE "${schema}".held (resource text PRIMARY KEY, token bigint NOT NULL)`);
  return async (i, round) => {
    const resource = `r${i}`;
    await clients[i].query({
      name: 'take',
      text: `INSERT INTO "${schema}".held (resource, token) VALUES ($1, $2)`,
      values: [resource, round],
    });
    await clients[i].query({
      name: 'give',
      text: `DELETE FROM "${schema}".held WHERE resource = $1`,
      values: [resource],
    });
  };
}

/** The lock service's acquire + release over HTTP, each client on a resource of its own. */
function uncontendedPairs(http: LockHttpClient): Pair {
  const tag = Math.random().toString(36).slice(2, 8);
  return async (i) => {
    const resource = `bench-${tag}-${i}`;
    const grant = await http.call(`/locks/${resource}/acquire`, { client_id: `c${i}`, ttl_ms: 30_000 });
    await http.call(`/locks/${resource}/release`, { client_id: `c${i}`, token: grant.token });
  };
}

async function measureHandoff(
  context: BenchContext,
  http: LockHttpClient,
): Promise<ReturnType<typeof summarizeLatencies>> {
  const resource = `bench-handoff-${Math.random().toString(36).slice(2, 8)}`;
  const grantedAt = new Map<number, number>();
  const releasedAt = new Map<number, number>();
  let granted = 0;
  await Promise.all(
    Array.from({ length: CONTENDERS }, async (_, i) => {
      while (granted < HANDOFFS + 1) {
        const grant = await http.call(`/locks/${resource}/acquire`, {
          client_id: `h${i}`,
          wait_ms: 30_000,
          ttl_ms: 30_000,
        });
        grantedAt.set(grant.token, performance.now());
        granted++;
        releasedAt.set(grant.token, performance.now());
        await http.call(`/locks/${resource}/release`, { client_id: `h${i}`, token: grant.token });
      }
    }),
  );
  const latencies: number[] = [];
  for (const [token, sent] of releasedAt) {
    const next = grantedAt.get(token + 1);
    if (next !== undefined) latencies.push(next - sent);
  }
  const summary = summarizeLatencies(latencies);
  context.log(
    `hand-off: p50 ${summary.p50.toFixed(2)} ms, p99 ${summary.p99.toFixed(2)} ms over ${summary.count}`,
  );
  return summary;
}

/** A lean keep-alive HTTP client: the load generator shares the CPUs with the service it measures. */
class LockHttpClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: CLIENTS + CONTENDERS });
  private readonly url: URL;

  constructor(base: string) {
    this.url = new URL(base);
  }

  call(path: string, body: unknown): Promise<{ token: number }> {
    const payload = JSON.stringify(body);
    return new Promise((done, fail) => {
      const req = request(
        {
          agent: this.agent,
          host: this.url.hostname,
          port: this.url.port,
          path,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            if (res.statusCode !== 200) fail(new Error(`${path} answered ${res.statusCode}: ${text}`));
            else done(JSON.parse(text) as { token: number });
          });
        },
      );
      req.on('error', fail);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
