import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ServiceProcess } from '@lib/testing';

import {
  type Answer,
  acquire,
  auditOf,
  get,
  grant,
  LockCluster,
  release,
  unique,
  waitForWaiters,
} from './lock-cluster.js';

describe('lock-service when a replica is killed', () => {
  let cluster: LockCluster;

  // three replicas: each test kills one of the first two; the third survives them both
  beforeAll(async () => {
    cluster = await LockCluster.start(3);
  });

  afterAll(async () => {
    await cluster?.dispose();
  });

  it('serves the clients that waited on a SIGKILLed replica when they retry on another one, losing nothing', async () => {
    const [doomed, , survivor] = cluster.replicas;
    const resource = unique('failover');
    const holder = await grant(survivor, resource, { client_id: 'holder', ttl_ms: 30_000 });
    let counter = 0;
    const tokens: number[] = [];

    /** A client that asks on `first`, and on an error of the connection asks `survivor` again. */
    const client = async (id: string, first: ServiceProcess): Promise<void> => {
      let answer: Answer | undefined;
      try {
        answer = await acquire(first, resource, { client_id: id, wait_ms: 30_000 });
      } catch {
        answer = await acquire(survivor, resource, { client_id: id, wait_ms: 30_000 });
      }
      expect(answer.status).toBe(200);
      const lease = answer.body as { token: number; resource: string; client_id: string };
      tokens.push(lease.token);
      counter++;
      expect((await release(survivor, lease)).status).toBe(200);
    };
    const clients = Array.from({ length: 5 }, (_, i) => client(`waiter-${i}`, doomed));
    await waitForWaiters(survivor, resource, 5);

    expect(await doomed.kill('SIGKILL')).toBeNull();
    // the clients retry on the survivor (their old requests belonged to the dead replica's session)
    await waitForWaiters(survivor, resource, 5);
    expect((await release(survivor, holder)).status).toBe(200);
    await Promise.all(clients);

    expect(counter).toBe(5);
    expect(tokens).toEqual([2, 3, 4, 5, 6]);
    const grants = (await auditOf(survivor, resource)).filter((e) => e.event === 'grant');
    expect(grants.map((e) => e.client_id).sort()).toEqual([
      'holder',
      ...Array.from({ length: 5 }, (_, i) => `waiter-${i}`),
    ]);
    expect(
      (await get<{ holders: unknown[]; waiters: unknown[] }>(survivor, `/locks/${resource}`)).body,
    ).toMatchObject({
      holders: [],
      waiters: [],
    });
  });

  it('drops the waiting requests of a dead replica from the queue', async () => {
    const [, doomed, survivor] = cluster.replicas;
    const resource = unique('abandoned');
    const holder = await grant(survivor, resource, { client_id: 'holder' });
    const orphan = acquire(doomed, resource, { client_id: 'orphan', wait_ms: 60_000 }).catch(
      (error: unknown) => error,
    );
    await waitForWaiters(survivor, resource, 1);
    await doomed.kill('SIGKILL');
    await orphan;

    await release(survivor, holder);
    // were the orphan still queued (or granted), this would be refused
    const next = await grant(survivor, resource, { client_id: 'next' });
    expect(next.token).toBe(holder.token + 1);
    const events = (await auditOf(survivor, resource)).map((e) => `${e.event}:${e.client_id}`);
    expect(events).toContain('abandon:orphan');
    expect(events).not.toContain('grant:orphan');
    await release(survivor, next);
  });
});
