import { afterEach, describe, expect, it } from '@jest/globals';
import type { IngestEvent } from '@lib/contracts';
import {
  makeLoad,
  PipelineFixture,
  postBatches,
  queryDatabase,
  type ServiceProcess,
  waitFor,
} from '@lib/testing';

import { assignPartitions } from '../src/ownership/rendezvous.js';
import type { AggregatorStats } from '../src/stats/stats.controller.js';

const PARTITIONS = 16;
const replicaIds = (n: number): string[] => Array.from({ length: n }, (_, i) => `replica-${i + 1}`);

let pipeline: PipelineFixture | undefined;

afterEach(async () => {
  await pipeline?.dispose();
  pipeline = undefined;
});

/** Runs a test body; when it fails, the output of every process of the pipeline is added to the error. */
async function withLogs(body: (p: PipelineFixture) => Promise<void>): Promise<void> {
  if (!pipeline) throw new Error('no pipeline');
  try {
    await body(pipeline);
  } catch (error) {
    if (error instanceof Error) error.message += `\n\nservice output:\n${pipeline.logs()}`;
    throw error;
  }
}

async function startPipeline(aggregators: number): Promise<PipelineFixture> {
  pipeline = await PipelineFixture.start(
    { PARTITIONS: String(PARTITIONS), REBALANCE_INTERVAL_MS: '250' },
    'scale',
    {
      aggregators,
      aggregatorEnv: (index) => ({ REPLICA_ID: `replica-${index + 1}` }),
    },
  );
  return pipeline;
}

async function stats(from: ServiceProcess): Promise<AggregatorStats> {
  const response = await fetch(`${from.url}/stats`);
  if (response.status !== 200) throw new Error(`/stats answered ${response.status}`);
  return (await response.json()) as AggregatorStats;
}

/** Who owns what, as `/stats` of `from` reports it: member id → its partitions. */
function ownershipOf(view: AggregatorStats): Record<string, number[]> {
  return Object.fromEntries(view.members.map((m) => [m.replica, m.partitions]));
}

/** The rendezvous assignment of the members, as member id → partitions. */
function expectedOwnership(members: string[]): Record<string, number[]> {
  const owners = assignPartitions(members, PARTITIONS);
  return Object.fromEntries(members.map((m) => [m, owners.flatMap((owner, p) => (owner === m ? [p] : []))]));
}

/** Waits until every partition is leased by its rendezvous owner among `members`. */
function waitForOwnership(
  from: ServiceProcess,
  members: string[],
  timeoutMs = 15_000,
): Promise<AggregatorStats> {
  const expected = expectedOwnership(members);
  return waitFor(
    async () => {
      const view = await stats(from);
      const settled =
        view.partitions.unowned.length === 0 &&
        JSON.stringify(ownershipOf(view)) === JSON.stringify(expected);
      return settled ? view : undefined;
    },
    { timeoutMs, intervalMs: 50, description: `partitions owned by ${members.join(', ')}` },
  );
}

/** Counts of the stored rows: all of them and distinct keys. */
async function storedRows(p: PipelineFixture): Promise<{ rows: number; keys: number }> {
  const [row] = await queryDatabase<{ rows: string; keys: string }>(
    `SELECT count(*) AS rows, count(DISTINCT (topic, event_id)) AS keys FROM "${p.schema}".events`,
  );
  return { rows: Number(row.rows), keys: Number(row.keys) };
}

/** Event ids of `topic` in the order they were stored. */
async function storedOrder(p: PipelineFixture, topic: string): Promise<string[]> {
  const rows = await queryDatabase<{ event_id: string }>(
    `SELECT event_id FROM "${p.schema}".events WHERE topic = $1 ORDER BY id`,
    [topic],
  );
  return rows.map((r) => r.event_id);
}

/**
 * One client per topic posting that topic's events strictly in order, `perRequest` at a time, each
 * request only after the previous one was accepted: the order a topic's events must be stored in.
 */
async function postInOrder(
  p: PipelineFixture,
  topics: string[],
  eventsPerTopic: number,
  perRequest: number,
): Promise<void> {
  await Promise.all(
    topics.map(async (topic) => {
      for (let i = 0; i < eventsPerTopic; i += perRequest) {
        const events: IngestEvent[] = [];
        for (let j = i; j < Math.min(i + perRequest, eventsPerTopic); j++) {
          events.push({
            topic,
            event_id: `o${j}`,
            timestamp: new Date().toISOString(),
            source: 't',
            payload: {},
          });
        }
        const response = await p.post({ events });
        if (response.status !== 202) throw new Error(`POST answered ${response.status}`);
      }
    }),
  );
}

function inOrder(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `o${i}`);
}

/**
 * Mid-load: `total` events (30 % duplicates) posted 4 requests at a time, beside one client posting the
 * topic `ordered.<name>` strictly in order; resolves once a share of it is committed. `finish` waits for
 * everything and checks the counts, the rows and the order are exact.
 */
async function loadUnderway(
  p: PipelineFixture,
  name: string,
  { total = 20_000, ordered = 400 } = {},
): Promise<{ finish: () => Promise<void> }> {
  const { events, unique } = makeLoad(total, { topics: 20, dupRatio: 0.3, prefix: name });
  const load = postBatches(p.publisher.url, events, { batchSize: 200, concurrency: 4 });
  const inOrderTopic = `ordered.${name}`;
  const orderedLoad = postInOrder(p, [inOrderTopic], ordered, 5);
  await waitFor(async () => (await stats(p.aggregator)).received >= total / 7, {
    timeoutMs: 60_000,
    description: 'a share of the load committed',
  });
  return {
    async finish() {
      const [sent] = await Promise.all([load, orderedLoad]);
      expect(sent.accepted).toBe(total);
      const final = await p.waitForReceived(total + ordered, 120_000);
      expect(final.unique_processed).toBe(unique + ordered);
      expect(final.duplicate_dropped).toBe(total - unique);
      expect(await storedRows(p)).toEqual({ rows: unique + ordered, keys: unique + ordered });
      expect(await storedOrder(p, inOrderTopic)).toEqual(inOrder(ordered));
    },
  };
}

describe('aggregator scale-out', () => {
  it('shares the partitions among three replicas and stores each topic in publish order', async () => {
    const p = await startPipeline(3);
    await withLogs(async () => {
      const view = await waitForOwnership(p.aggregator, replicaIds(3));
      for (const ids of Object.values(ownershipOf(view))) expect(ids.length).toBeGreaterThan(0);

      const topics = Array.from({ length: 12 }, (_, i) => `ordered.t${i}`);
      await postInOrder(p, topics, 150, 10);
      await p.waitForReceived(12 * 150);
      for (const topic of topics) expect(await storedOrder(p, topic)).toEqual(inOrder(150));

      // every replica answers the same counters and the same consumer group
      const answers = await Promise.all(p.aggregators.map(stats));
      for (const answer of answers) {
        const { replica, uptime, partitions, ...shared } = answer;
        const { replica: r0, uptime: u0, partitions: p0, ...first } = answers[0];
        expect(shared).toEqual(first);
        expect(partitions.unowned).toEqual(p0.unowned);
        expect(partitions.owned).toEqual(ownershipOf(answer)[replica]);
        void [uptime, r0, u0];
      }
      expect(answers.map((a) => a.replica)).toEqual(replicaIds(3));
    });
  });

  it('moves a killed replica’s partitions within seconds, losing and repeating nothing', async () => {
    const p = await startPipeline(3);
    await withLogs(async () => {
      await waitForOwnership(p.aggregator, replicaIds(3));
      const load = await loadUnderway(p, 'kill');
      const victim = p.aggregators[1];
      const killedAt = performance.now();
      await victim.kill('SIGKILL');
      await waitForOwnership(p.aggregator, ['replica-1', 'replica-3']);
      const movedWithinMs = performance.now() - killedAt;
      await load.finish();
      expect(movedWithinMs).toBeLessThan(5_000);
    });
  });

  it('gives a replica that joins mid-load only its share of partitions, counts still exact', async () => {
    const p = await startPipeline(3);
    await withLogs(async () => {
      const before = ownershipOf(await waitForOwnership(p.aggregator, replicaIds(3)));
      const load = await loadUnderway(p, 'join');
      await p.addAggregator({ REPLICA_ID: 'replica-4' });
      const after = ownershipOf(await waitForOwnership(p.aggregator, replicaIds(4)));

      const ownerBefore = (partition: number): string | undefined =>
        Object.keys(before).find((m) => before[m].includes(partition));
      const moved = after['replica-4'].filter((partition) => ownerBefore(partition) !== 'replica-4');
      expect(moved.length).toBeGreaterThan(0);
      expect(moved.length).toBeLessThan(PARTITIONS / 2);
      // nothing moved between the replicas already there
      for (const member of replicaIds(3)) {
        for (const partition of after[member]) expect(before[member]).toContain(partition);
      }
      await load.finish();
    });
  });

  it('survives a replica losing its leases mid-load (its database session cut): counts exact', async () => {
    const p = await startPipeline(2);
    await withLogs(async () => {
      await waitForOwnership(p.aggregator, replicaIds(2));
      const load = await loadUnderway(p, 'cut', { total: 10_000, ordered: 100 });
      // the other replica may take the partitions while replica-2 still has a batch in hand
      const [cut] = await queryDatabase<{ cut: boolean }>(
        `SELECT pg_terminate_backend(backend_pid) AS cut FROM "${p.schema}".aggregator_members
         WHERE member_id = 'replica-2'`,
      );
      expect(cut.cut).toBe(true);
      await load.finish();
      // and it joins again, taking back its share
      await waitForOwnership(p.aggregator, replicaIds(2));
    });
  });

  it('hands over the partitions of a replica stopped with SIGTERM', async () => {
    const p = await startPipeline(2);
    await withLogs(async () => {
      await waitForOwnership(p.aggregator, replicaIds(2));
      expect(await p.aggregators[1].stop()).toBe(0);
      await waitForOwnership(p.aggregator, ['replica-1']);
      await postInOrder(p, ['ordered.term'], 50, 10);
      await p.waitForReceived(50);
    });
  });
});
