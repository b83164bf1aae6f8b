import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

import {
  type BenchContext,
  type BenchResult,
  type BenchSection,
  BenchSkipped,
  serviceEnv,
} from './bench-section.js';
import { postAndDrain, readStats, type Round } from './pipeline.js';
import { PIPELINE_LOAD } from './baselines.js';
import {
  deleteStreams,
  dropSchema,
  freePort,
  makeLoad,
  postBatches,
  queryDatabase,
  ROOT,
  ServiceProcess,
  uniqueName,
  waitFor,
} from '@lib/testing';

/** Replica counts measured, in one run. */
const REPLICAS = [1, 2, 3];
const ROUNDS = 3;
const WARM_UP_EVENTS = 10_000;
/** Enough topics that every one of the 16 partitions carries load, whichever replica owns it. */
const TOPICS = 64;
const FAILOVER_EVENTS = 60_000;
const FAILOVER_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

interface ReplicaGroup {
  namespace: string;
  publisher: ServiceProcess;
  aggregators: ServiceProcess[];
}

interface GroupView {
  members: { replica: string; partitions: number[] }[];
  partitions: { unowned: number[] };
}

/**
 * The aggregator scaled out: the whole pipeline with 1, 2 and 3 aggregator replicas sharing the
 * partitions (each count on a fresh namespace and schema, a warm-up, then the median of 3 rounds of
 * 50k events over 64 topics), and the failover time: with 3 replicas under load, one is killed with
 * SIGKILL and the time is taken until each of its partitions is leased by a survivor and until it has
 * committed again. On one 2-core machine the replicas share the cores and Postgres, so the rate shows
 * what sharing costs rather than what more machines would give.
 */
export const scaleSection: BenchSection = {
  name: 'scale',
  description: 'aggregator replicas: end-to-end rate with 1, 2, 3 and the failover time after kill -9',
  async run(context) {
    const entry = resolve(ROOT, 'dist/apps/aggregator/src/main.js');
    if (!existsSync(entry)) throw new BenchSkipped(`${entry} is missing: run npm run build`);
    const postgresRate = context.result('baselines.postgres_insert');
    const results: BenchResult[] = [];
    let single: number | undefined;
    for (const replicas of REPLICAS) {
      const group = await startGroup(context, replicas);
      try {
        const rate = await measureRate(context, group);
        single ??= rate.value;
        results.push({
          name: `scale.end_to_end_${replicas}_replica${replicas > 1 ? 's' : ''}`,
          value: rate.value,
          unit: 'events/s',
          baseline: postgresRate && { name: postgresRate.name, value: postgresRate.value },
          note: `median of ${ROUNDS} rounds (${rate.rounds.join(', ')} events/s); ${
            replicas > 1 ? `${(rate.value / single).toFixed(2)}× the single replica` : 'one replica owns all'
          }`,
        });
      } finally {
        await stopGroup(group);
      }
    }
    const group = await startGroup(context, 3);
    try {
      results.push(...(await measureFailover(context, group)));
    } finally {
      await stopGroup(group);
    }
    return results;
  },
};

async function startGroup(context: BenchContext, replicas: number): Promise<ReplicaGroup> {
  const namespace = uniqueName('scale');
  const common = {
    ...serviceEnv(context, namespace),
  };
  const publisher = new ServiceProcess('publisher', { ...common, PORT: String(await freePort()) });
  const aggregators: ServiceProcess[] = [];
  for (let i = 1; i <= replicas; i++) {
    aggregators.push(
      new ServiceProcess('aggregator', {
        ...common,
        REPLICA_ID: `replica-${i}`,
        PORT: String(await freePort()),
      }),
    );
  }
  const group = { namespace, publisher, aggregators };
  context.defer(`delete streams of ${namespace}`, () => deleteStreams(namespace, context.natsUrl));
  context.defer(`drop schema ${namespace}`, () => dropSchema(namespace, context.databaseUrl));
  context.defer(`stop the services of ${namespace}`, () => stopGroup(group));
  context.log(`starting a publisher and ${replicas} aggregator(s) on ${namespace}`);
  // the first one runs the migrations; the rest start together
  await aggregators[0].start(60_000);
  await Promise.all([publisher.start(60_000), ...aggregators.slice(1).map((a) => a.start(60_000))]);
  await waitFor(
    async () => {
      const view = await readView(aggregators[0]);
      return view.members.length === replicas && view.partitions.unowned.length === 0;
    },
    { timeoutMs: 30_000, description: `${replicas} replica(s) owning every partition` },
  );
  return group;
}

async function stopGroup(group: ReplicaGroup): Promise<void> {
  await Promise.all([group.publisher, ...group.aggregators].map((s) => s.stop(STOP_TIMEOUT_MS)));
}

async function readView(aggregator: ServiceProcess): Promise<GroupView> {
  const response = await fetch(`${aggregator.url}/stats`, { signal: AbortSignal.timeout(5_000) });
  if (response.status !== 200) throw new Error(`GET /stats answered ${response.status}`);
  return (await response.json()) as GroupView;
}

async function measureRate(
  context: BenchContext,
  { publisher, aggregators }: ReplicaGroup,
): Promise<{ value: number; rounds: number[] }> {
  const label = `${aggregators.length}r`;
  const warmUp = await postAndDrain(
    context,
    publisher,
    aggregators[0],
    `${label}warm`,
    WARM_UP_EVENTS,
    0,
    TOPICS,
  );
  let received = warmUp.stats.received;
  const rounds: Round[] = [];
  for (let i = 1; i <= ROUNDS; i++) {
    const round = await postAndDrain(
      context,
      publisher,
      aggregators[0],
      `${label}r${i}`,
      PIPELINE_LOAD.events,
      received,
      TOPICS,
    );
    received = round.stats.received;
    rounds.push(round);
  }
  const rates = rounds.map((r) => r.rate).sort((a, b) => a - b);
  return { value: rates[Math.floor(rates.length / 2)], rounds: rounds.map((r) => Math.round(r.rate)) };
}

/**
 * Kills replica-2 under load and follows each of its partitions: when a survivor holds its lease
 * (seen in `/stats`), then when its watermark first moves after that (seen in Postgres).
 */
async function measureFailover(context: BenchContext, group: ReplicaGroup): Promise<BenchResult[]> {
  const [survivor, victim] = group.aggregators;
  const { events } = makeLoad(FAILOVER_EVENTS, { topics: TOPICS, dupRatio: 0.3, prefix: 'failover' });
  const load = postBatches(group.publisher.url, events, { batchSize: 1_000, concurrency: 8 });
  await waitFor(
    async () => ((await readStats(survivor.url)).received >= FAILOVER_EVENTS / 5 ? true : undefined),
    {
      timeoutMs: 60_000,
      intervalMs: 20,
      description: 'a fifth of the failover load committed',
    },
  );
  const before = await readView(survivor);
  const moving = before.members.find((m) => m.replica === 'replica-2')?.partitions ?? [];
  context.log(`killing replica-2 (partitions ${moving.join(',')}) with SIGKILL`);
  const killedAt = performance.now();
  await victim.kill('SIGKILL');

  const leasedAt = new Map<number, { at: number; watermark: number }>();
  const consumingAt = new Map<number, number>();
  const deadline = killedAt + FAILOVER_TIMEOUT_MS;
  while (consumingAt.size < moving.length && performance.now() < deadline) {
    const [view, offsets] = await Promise.all([
      readView(survivor).catch(() => undefined),
      queryDatabase<{ partition: number; watermark: string }>(
        `SELECT partition, watermark FROM "${group.namespace}".partition_offsets`,
        [],
        context.databaseUrl,
      ),
    ]);
    const now = performance.now();
    const watermark = new Map(offsets.map((o) => [o.partition, Number(o.watermark)]));
    for (const partition of moving) {
      const lease = leasedAt.get(partition);
      if (!lease) {
        const taken = view?.members.some(
          (m) => m.replica !== 'replica-2' && m.partitions.includes(partition),
        );
        if (taken) leasedAt.set(partition, { at: now, watermark: watermark.get(partition) ?? 0 });
      } else if (!consumingAt.has(partition) && (watermark.get(partition) ?? 0) > lease.watermark) {
        consumingAt.set(partition, now);
      }
    }
    await new Promise((done) => setTimeout(done, 25));
  }
  await load;
  const worst = (times: Iterable<number>): number => Math.max(...[...times].map((t) => t - killedAt));
  const leased = [...leasedAt.values()].map((l) => l.at);
  context.log(
    `${leasedAt.size}/${moving.length} partitions leased by survivors, ${consumingAt.size} consuming again`,
  );
  return [
    {
      name: 'scale.failover_leased',
      value: leased.length > 0 ? worst(leased) : Number.NaN,
      unit: 'ms',
      note: `kill -9 → the last of ${moving.length} partitions leased by a survivor (${leasedAt.size} seen)`,
    },
    {
      name: 'scale.failover_consuming',
      value: consumingAt.size === moving.length ? worst(consumingAt.values()) : Number.NaN,
      unit: 'ms',
      targets: [{ op: '<=', value: 5_000 }],
      note: `kill -9 → every moved partition committed a batch again (${consumingAt.size}/${moving.length}); rebalance every 1 s`,
    },
  ];
}
