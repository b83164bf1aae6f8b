import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { resolve } from 'node:path';

import { dropSchema, freePort, ROOT, ServiceProcess, uniqueName, waitFor } from '@lib/testing';
import pg from 'pg';

import { summarizeLatencies } from '../publish/load.js';
import {
  type BenchContext,
  type BenchSection,
  BenchSkipped,
  perSecond,
  serviceEnv,
} from './bench-section.js';

const REPLICAS = 3;
/** Concurrent HTTP clients of the read measure (keep-alive connections). */
const CLIENTS = 32;
const WARM_UP_MS = 1_500;
const MEASURE_MS = 3_000;
/** Read rounds per server, interleaved baseline / cache so that machine drift hits both alike. */
const ROUNDS = 3;
const WRITES = 1_000;
const WARM_UP_WRITES = 100;
const WRITE_KEYS = 50;
const STOP_TIMEOUT_MS = 10_000;
const HOT_KEY = 'bench:hot';
const HOT_VALUE = { name: 'Ada Lovelace', roles: ['admin', 'author'], visits: 1815 };

/**
 * The coherent cache against the HTTP stack it runs on, in one run:
 * - reads: 32 keep-alive clients `GET /cache/<key>` on one replica (every answer a hit from memory)
 *   beside the same load on a NestJS app from `createHttpApp` answering the same bytes as a constant;
 *   median of 3 interleaved rounds each, the ratio is the share of the HTTP stack the cache keeps;
 * - writes: 1,000 sequential `PUT`s on one replica of three, each answered after the commit and the
 *   acknowledgement of both other replicas: client latency p50/p99, and the invalidation itself
 *   (commit → last acknowledgement, as the write reports it).
 */
export const cacheSection: BenchSection = {
  name: 'cache',
  description: 'cache-service GET hits vs a constant NestJS app; write + invalidation latency, 3 replicas',
  async run(context) {
    const entry = resolve(ROOT, 'dist/apps/cache-service/src/main.js');
    const constantEntry = resolve(ROOT, 'dist/scripts/bench/constant-app.js');
    if (!existsSync(entry) || !existsSync(constantEntry))
      throw new BenchSkipped(`${entry} or ${constantEntry} is missing: run npm run build`);

    const schema = uniqueName('benchcache');
    const replicas: ServiceProcess[] = [];
    for (let i = 0; i < REPLICAS; i++) {
      replicas.push(
        new ServiceProcess('cache-service', {
          ...serviceEnv(context, schema),
          PORT: String(await freePort()),
        }),
      );
    }
    context.defer(`drop schema ${schema}`, () => dropSchema(schema, context.databaseUrl));
    for (const replica of replicas)
      context.defer('stop a cache replica', () => replica.stop(STOP_TIMEOUT_MS));
    context.log(`starting ${REPLICAS} cache replicas (namespace and schema ${schema})`);
    await Promise.all(replicas.map((replica) => replica.start(60_000)));
    const client = new HttpClient(CLIENTS);
    context.defer('close the HTTP agent', () => client.close());

    const reader = replicas[0];
    const written = await client.send(
      'PUT',
      `${reader.url}/cache/${HOT_KEY}`,
      JSON.stringify({ value: HOT_VALUE }),
    );
    if (written.status !== 200) throw new Error(`PUT answered ${written.status}: ${written.body}`);
    await client.send('GET', `${reader.url}/cache/${HOT_KEY}`);
    const hit = await client.send('GET', `${reader.url}/cache/${HOT_KEY}`);
    if (!hit.body.includes('"source":"memory"'))
      throw new Error(`the second read was not a hit: ${hit.body}`);

    const constantPort = await freePort();
    const constant = spawn(process.execPath, [constantEntry], {
      env: { PATH: process.env.PATH ?? '', PORT: String(constantPort), BODY: hit.body, LOG_LEVEL: 'warn' },
      stdio: 'ignore',
    });
    context.defer('stop the constant app', () => stopChild(constant));
    const constantUrl = `http://127.0.0.1:${constantPort}/constant/${HOT_KEY}`;
    await waitFor(
      async () => (await client.send('GET', constantUrl).catch(() => undefined))?.status === 200,
      {
        timeoutMs: 30_000,
        description: 'the constant app answers',
      },
    );

    const statsBefore = await readStats(client, reader.url);
    const baselineRounds: number[] = [];
    const cacheRounds: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      // alternate which goes first, so that neither always follows the other's load
      if (round % 2 === 1) baselineRounds.push(await measureReads(client, constantUrl));
      cacheRounds.push(await measureReads(client, `${reader.url}/cache/${HOT_KEY}`));
      if (round % 2 === 0) baselineRounds.push(await measureReads(client, constantUrl));
      context.log(
        `round ${round}: constant ${Math.round(baselineRounds.at(-1)!)} req/s, cache ${Math.round(cacheRounds.at(-1)!)} req/s`,
      );
    }
    const statsAfter = await readStats(client, reader.url);
    const reads = statsAfter.hits + statsAfter.misses - statsBefore.hits - statsBefore.misses;
    const missed = statsAfter.misses - statsBefore.misses;

    const writes = await measureWrites(context, client, replicas[0].url);
    const commits = await measureCommits(context, schema);
    const baseline = median(baselineRounds);
    const cache = median(cacheRounds);
    return [
      {
        name: 'cache.constant_http',
        value: baseline,
        unit: 'req/s',
        note: `NestJS fastify app from createHttpApp answering the same ${hit.body.length} bytes, ${CLIENTS} keep-alive clients; rounds ${baselineRounds.map(Math.round).join(', ')}`,
      },
      {
        name: 'cache.get_hits',
        value: cache,
        unit: 'req/s',
        baseline: { name: 'cache.constant_http', value: baseline },
        targets: [{ op: '>=', value: 0.7, of: 'ratio' }],
        note: `one replica, ${CLIENTS} clients, median of ${ROUNDS} rounds of ${MEASURE_MS} ms (${cacheRounds.map(Math.round).join(', ')}); ${reads} reads, ${missed} not from memory`,
      },
      { name: 'cache.durable_commit_p50', value: commits.p50, unit: 'ms' },
      {
        name: 'cache.durable_commit_p99',
        value: commits.p99,
        unit: 'ms',
        note: `raw single-row upsert (json value), its own durable commit, one connection, ${commits.count} sequential: the floor of a write`,
      },
      {
        name: 'cache.write_p50',
        value: writes.client.p50,
        unit: 'ms',
        baseline: { name: 'cache.durable_commit_p50', value: commits.p50 },
      },
      {
        name: 'cache.write_p99',
        value: writes.client.p99,
        unit: 'ms',
        baseline: { name: 'cache.durable_commit_p99', value: commits.p99 },
        targets: [{ op: '<=', value: 15 }],
        note: `${writes.client.count} sequential PUTs on one of ${REPLICAS} replicas over ${WRITE_KEYS} keys, each answered after commit + both acks; max ${writes.client.max.toFixed(1)} ms`,
      },
      { name: 'cache.invalidation_p50', value: writes.invalidation.p50, unit: 'ms' },
      {
        name: 'cache.invalidation_p99',
        value: writes.invalidation.p99,
        unit: 'ms',
        note: `commit → last acknowledgement of the ${REPLICAS - 1} other replicas (membership read, publish, acks); ${writes.leaseWaits} lease waits`,
      },
    ];
  },
};

/** Requests per second answered 200 by `url` under `CLIENTS` concurrent keep-alive clients, after a warm-up. */
async function measureReads(client: HttpClient, url: string): Promise<number> {
  const run = async (durationMs: number): Promise<number> => {
    const deadline = performance.now() + durationMs;
    let answered = 0;
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (performance.now() < deadline) {
          const answer = await client.send('GET', url);
          if (answer.status !== 200) throw new Error(`GET ${url} answered ${answer.status}`);
          answered++;
        }
      }),
    );
    return answered;
  };
  await run(WARM_UP_MS);
  const started = performance.now();
  const answered = await run(MEASURE_MS);
  return perSecond(answered, performance.now() - started);
}

interface WriteFigures {
  client: ReturnType<typeof summarizeLatencies>;
  invalidation: ReturnType<typeof summarizeLatencies>;
  leaseWaits: number;
}

async function measureWrites(context: BenchContext, client: HttpClient, url: string): Promise<WriteFigures> {
  const latencies: number[] = [];
  const invalidations: number[] = [];
  let leaseWaits = 0;
  context.log(`writes: ${WARM_UP_WRITES} warm-up then ${WRITES} measured PUTs`);
  for (let i = 0; i < WARM_UP_WRITES + WRITES; i++) {
    const started = performance.now();
    const answer = await client.send(
      'PUT',
      `${url}/cache/bench:w${i % WRITE_KEYS}`,
      JSON.stringify({ value: { i } }),
    );
    const took = performance.now() - started;
    if (answer.status !== 200) throw new Error(`PUT answered ${answer.status}: ${answer.body}`);
    const report = (
      JSON.parse(answer.body) as { invalidation: { replicas: number; lease_waits: number; ms: number } }
    ).invalidation;
    if (report.replicas !== REPLICAS - 1) throw new Error(`a write saw ${report.replicas} other replicas`);
    if (i < WARM_UP_WRITES) continue;
    latencies.push(took);
    invalidations.push(report.ms);
    leaseWaits += report.lease_waits;
  }
  return {
    client: summarizeLatencies(latencies),
    invalidation: summarizeLatencies(invalidations),
    leaseWaits,
  };
}

/** Latency of the rawest durable write of a cache entry: one upsert, one commit, on one connection. */
async function measureCommits(context: BenchContext, schema: string) {
  const client = new pg.Client({ connectionString: context.databaseUrl, application_name: 'bench-cache' });
  await client.connect();
  try {
    await client.query(
      `CREATE TABLE "${schema}".raw_entries (key text PRIMARY KEY, value json NOT NULL, version bigint NOT NULL)`,
    );
    const upsert = {
      name: `bench-cache-upsert-${schema}`,
      text: `INSERT INTO "${schema}".raw_entries VALUES ($1, $2::json, $3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version`,
    };
    const latencies: number[] = [];
    for (let i = 0; i < WARM_UP_WRITES + WRITES; i++) {
      const started = performance.now();
      await client.query({ ...upsert, values: [`bench:w${i % WRITE_KEYS}`, JSON.stringify({ i }), i] });
      if (i >= WARM_UP_WRITES) latencies.push(performance.now() - started);
    }
    context.log('raw commits measured');
    return summarizeLatencies(latencies);
  } finally {
    await client.end();
  }
}

async function readStats(client: HttpClient, url: string): Promise<{ hits: number; misses: number }> {
  const answer = await client.send('GET', `${url}/cache/stats`);
  return JSON.parse(answer.body) as { hits: number; misses: number };
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
}

/** node:http with one keep-alive agent: the cheapest client Node has, so the servers are what is measured. */
class HttpClient {
  private readonly agent: Agent;

  constructor(connections: number) {
    this.agent = new Agent({ keepAlive: true, maxSockets: connections });
  }

  send(method: string, url: string, body?: string): Promise<{ status: number; body: string }> {
    return new Promise((resolvePromise, reject) => {
      const req = request(
        url,
        {
          method,
          agent: this.agent,
          headers:
            body === undefined
              ? {}
              : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolvePromise({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((done) => child.once('exit', done));
  child.kill('SIGKILL');
  await exited;
}
