import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { acquire, auditOf, grant, LockCluster, release, unique, waitForWaiters } from './lock-cluster.js';

/** A deterministic pseudo-random sequence, so a failing run can be replayed from its seed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1_664_525 + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('lock-service under concurrency (two replicas)', () => {
  let cluster: LockCluster;

  beforeAll(async () => {
    cluster = await LockCluster.start(2);
  });

  afterAll(async () => {
    await cluster?.dispose();
  });

  const replica = (i: number) => cluster.replicas[i % cluster.replicas.length];

  it('never loses an update of a counter guarded by the lock, 50 concurrent clients', async () => {
    const resource = unique('counter');
    // the protected "storage": a read-modify-write with a delay in between, and a fence on tokens
    let counter = 0;
    let inside = 0;
    let overlaps = 0;
    let lastToken = 0;
    const tokens: number[] = [];
    await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const lease = await grant(replica(i), resource, {
          client_id: `client-${i}`,
          wait_ms: 60_000,
          ttl_ms: 30_000,
        });
        inside++;
        if (inside > 1) overlaps++;
        if (lease.token <= lastToken) throw new Error(`token ${lease.token} after ${lastToken}`);
        lastToken = lease.token;
        tokens.push(lease.token);
        const read = counter;
        await pause(3);
        counter = read + 1;
        inside--;
        const released = await release(replica(i + 1), lease);
        expect(released.status).toBe(200);
      }),
    );
    expect(overlaps).toBe(0);
    expect(counter).toBe(50);
    expect(tokens).toEqual([...tokens].sort((x, y) => x - y));
    expect(new Set(tokens).size).toBe(50);
  });

  it('issues strictly increasing fencing tokens whichever replica grants', async () => {
    const resource = unique('fence');
    const tokens: number[] = [];
    for (let i = 0; i < 20; i++) {
      const lease = await grant(replica(i), resource, {
        client_id: `f${i % 3}`,
        mode: i % 4 === 0 ? 'shared' : 'exclusive',
      });
      tokens.push(lease.token);
      await release(replica(i + 1), lease);
    }
    expect(tokens).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('refuses the request that closes a 2-cycle at once, naming the cycle', async () => {
    const [p, q] = [unique('P'), unique('Q')];
    const a = await grant(replica(0), p, { client_id: 'A' });
    const b = await grant(replica(1), q, { client_id: 'B' });
    const aWaits = grant(replica(0), q, { client_id: 'A', wait_ms: 20_000 });
    await waitForWaiters(replica(0), q, 1);
    const started = Date.now();
    const refused = await acquire(replica(1), p, { client_id: 'B', wait_ms: 20_000 });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({
      error: 'DEADLOCK',
      cycle: `B → ${p} held by A → ${q} held by B`,
      cycle_path: [
        { client: 'B', resource: p, blocked_by: 'A', blocker_state: 'held' },
        { client: 'A', resource: q, blocked_by: 'B', blocker_state: 'held' },
      ],
    });
    await release(replica(1), b);
    const aGotQ = await aWaits;
    expect((await auditOf(replica(0), p)).map((e) => e.event)).toContain('deadlock');
    await release(replica(0), aGotQ);
    await release(replica(0), a);
  });

  it('refuses the request that closes a 3-cycle', async () => {
    const [x, y, z] = [unique('X'), unique('Y'), unique('Z')];
    const held = [
      await grant(replica(0), x, { client_id: 'A3' }),
      await grant(replica(1), y, { client_id: 'B3' }),
      await grant(replica(0), z, { client_id: 'C3', mode: 'shared' }),
    ];
    const aWaits = grant(replica(1), y, { client_id: 'A3', wait_ms: 20_000 });
    await waitForWaiters(replica(0), y, 1);
    const bWaits = grant(replica(0), z, { client_id: 'B3', wait_ms: 20_000 });
    await waitForWaiters(replica(0), z, 1);
    const refused = await acquire(replica(1), x, { client_id: 'C3', mode: 'shared', wait_ms: 20_000 });
    expect(refused.body).toMatchObject({
      error: 'DEADLOCK',
      cycle: `C3 → ${x} held by A3 → ${y} held by B3 → ${z} held by C3`,
    });
    await release(replica(0), held[2]);
    const bGotZ = await bWaits;
    await release(replica(0), bGotZ);
    await release(replica(0), held[1]);
    const aGotY = await aWaits;
    await release(replica(0), aGotY);
    await release(replica(0), held[0]);
  });

  it('finds every one of many cycles built concurrently: one refusal per cycle, no hang', async () => {
    const next = random(20_251_123);
    const cycles = Array.from({ length: 12 }, (_, c) => {
      const length = 2 + Math.floor(next() * 3);
      return Array.from({ length }, (_, i) => ({
        client: `cy${c}-m${i}`,
        holds: `cy${c}-r${i}-${process.pid}`,
        replica: Math.floor(next() * 2),
      }));
    });
    const members = cycles.flat();
    const held = new Map<string, Awaited<ReturnType<typeof grant>>>();
    await Promise.all(
      members.map(async (m) =>
        held.set(m.client, await grant(replica(m.replica), m.holds, { client_id: m.client, ttl_ms: 60_000 })),
      ),
    );
    const outcomes = await Promise.all(
      cycles.map((cycle) =>
        Promise.all(
          cycle.map(async (member, i) => {
            const wanted = cycle[(i + 1) % cycle.length].holds;
            await pause(Math.floor(next() * 20));
            const answer = await acquire(replica(member.replica + 1), wanted, {
              client_id: member.client,
              wait_ms: 30_000,
            });
            // either way the member is done: it gives back what it holds, which unblocks its waiter
            if (answer.status === 200) await release(replica(member.replica), answer.body as never);
            await release(replica(member.replica), held.get(member.client)!);
            return answer.status === 200 ? 'granted' : String(answer.body.error);
          }),
        ),
      ),
    );
    for (const [c, cycle] of outcomes.entries()) {
      expect({
        cycle: c,
        deadlocks: cycle.filter((o) => o === 'DEADLOCK').length,
        other: cycle.filter((o) => o !== 'DEADLOCK' && o !== 'granted'),
      }).toEqual({
        cycle: c,
        deadlocks: 1,
        other: [],
      });
    }
  });
});
