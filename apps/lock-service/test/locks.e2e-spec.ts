import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { connect } from '@nats-io/transport-node';
import { lockSubjects } from '@lib/contracts';
import { TEST_NATS_URL } from '@lib/testing';

import {
  acquire,
  auditOf,
  get,
  grant,
  LockCluster,
  post,
  release,
  unique,
  waitForWaiters,
} from './lock-cluster.js';

describe('lock-service API', () => {
  let cluster: LockCluster;

  beforeAll(async () => {
    cluster = await LockCluster.start(2);
  });

  afterAll(async () => {
    await cluster?.dispose();
  });

  const a = () => cluster.replicas[0];
  const b = () => cluster.replicas[1];

  it('grants an exclusive lock with a fencing token and refuses a second one at once with the holders', async () => {
    const resource = unique('excl');
    const first = await grant(a(), resource, { client_id: 'alice', ttl_ms: 10_000 });
    expect(first).toMatchObject({ resource, client_id: 'alice', mode: 'exclusive', token: 1 });
    expect(Date.parse(first.expires_at)).toBeGreaterThan(Date.now());

    const refused = await acquire(b(), resource, { client_id: 'bob' });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({
      error: 'LOCK_CONFLICT',
      holders: [{ client_id: 'alice', mode: 'exclusive' }],
    });

    expect((await release(b(), first)).status).toBe(200);
    const second = await grant(b(), resource, { client_id: 'bob' });
    expect(second.token).toBe(2);
  });

  it('admits shared holders together and excludes an exclusive one while they hold', async () => {
    const resource = unique('shared');
    const r1 = await grant(a(), resource, { client_id: 'r1', mode: 'shared' });
    const r2 = await grant(b(), resource, { client_id: 'r2', mode: 'shared' });
    expect(r2.token).toBeGreaterThan(r1.token);
    expect((await acquire(a(), resource, { client_id: 'w' })).body).toMatchObject({ error: 'LOCK_CONFLICT' });
    const state = await get<{ holders: { client_id: string }[] }>(a(), `/locks/${resource}`);
    expect(state.body.holders.map((h) => h.client_id)).toEqual(['r1', 'r2']);
    await release(a(), r1);
    await release(a(), r2);
    const w = await grant(a(), resource, { client_id: 'w' });
    expect((await acquire(b(), resource, { client_id: 'r3', mode: 'shared' })).body).toMatchObject({
      error: 'LOCK_CONFLICT',
    });
    await release(a(), w);
  });

  it('grants waiters in FIFO order and never lets shared requests overtake a queued exclusive one', async () => {
    const resource = unique('fifo');
    const reader = await grant(a(), resource, { client_id: 'reader-0', mode: 'shared' });
    const granted: string[] = [];
    const ask = (client: string, mode: string, replica = a()) =>
      grant(replica, resource, { client_id: client, mode, wait_ms: 20_000 }).then((g) => {
        granted.push(client);
        return g;
      });
    const writer = ask('writer', 'exclusive', b());
    await waitForWaiters(a(), resource, 1);
    // a stream of shared requests behind the queued writer: compatible with the holder, still they wait
    const readers = [ask('reader-1', 'shared'), ask('reader-2', 'shared', b())];
    await waitForWaiters(a(), resource, 3);
    expect(granted).toEqual([]);

    await release(a(), reader);
    const writerGrant = await writer;
    expect(granted).toEqual(['writer']);
    expect(writerGrant.token).toBeGreaterThan(reader.token);
    await release(b(), writerGrant);
    const readerGrants = await Promise.all(readers);
    // the two readers (queued concurrently) are granted together, right after the writer; their
    // answers race each other
    expect(granted[0]).toBe('writer');
    expect([...granted].sort()).toEqual(['reader-1', 'reader-2', 'writer']);
    expect(readerGrants.map((g) => g.token).sort((x, y) => x - y)).toEqual([
      writerGrant.token + 1,
      writerGrant.token + 2,
    ]);
    for (const g of readerGrants) await release(a(), g);
  });

  it('wakes a waiter on another replica as soon as the lock is released', async () => {
    const resource = unique('wake');
    const holder = await grant(a(), resource, { client_id: 'holder' });
    const waiting = grant(b(), resource, { client_id: 'waiter', wait_ms: 30_000 });
    await waitForWaiters(a(), resource, 1);
    const releasedAt = Date.now();
    await release(a(), holder);
    const next = await waiting;
    // generous: the point is that it is not the 30 s deadline or a polling period
    expect(Date.now() - releasedAt).toBeLessThan(2_000);
    expect(next.token).toBe(holder.token + 1);
  });

  it('ends a lease that is not renewed, grants the next waiter and refuses the late release', async () => {
    const resource = unique('lease');
    const crashed = await grant(a(), resource, { client_id: 'crashed', ttl_ms: 300 });
    const waiter = await grant(b(), resource, { client_id: 'patient', wait_ms: 10_000 });
    expect(waiter.token).toBe(crashed.token + 1);
    expect((await release(a(), crashed)).body).toMatchObject({ error: 'LEASE_EXPIRED' });
    const renewLate = await post(a(), `/locks/${resource}/renew`, {
      client_id: 'crashed',
      token: crashed.token,
    });
    expect(renewLate.body).toMatchObject({ error: 'LEASE_EXPIRED' });
    const events = (await auditOf(a(), resource)).map((e) => `${e.event}:${e.client_id}`);
    expect(events).toContain('expiry:crashed');
    await release(b(), waiter);
  });

  it('keeps a renewed lease past its first ttl', async () => {
    const resource = unique('renew');
    // renewed every 200 ms for a lease of 1 s: slack for a busy machine, and past the first ttl in the end
    const lease = await grant(a(), resource, { client_id: 'renewer', ttl_ms: 1_000 });
    const started = Date.now();
    while (Date.now() - started < 1_400) {
      const renewed = await post<{ expires_at: string }>(b(), `/locks/${resource}/renew`, {
        client_id: 'renewer',
        token: lease.token,
        ttl_ms: 1_000,
      });
      expect(renewed.status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect((await acquire(a(), resource, { client_id: 'other' })).body).toMatchObject({
      error: 'LOCK_CONFLICT',
    });
    expect((await release(a(), lease)).status).toBe(200);
  });

  it('lets only the holder release or renew (client id and token)', async () => {
    const resource = unique('holder');
    const lease = await grant(a(), resource, { client_id: 'owner' });
    expect((await release(b(), { ...lease, token: lease.token + 1 })).body).toMatchObject({
      error: 'NOT_HOLDER',
    });
    expect((await release(b(), { ...lease, client_id: 'thief' })).body).toMatchObject({
      error: 'NOT_HOLDER',
    });
    const renew = await post(b(), `/locks/${resource}/renew`, { client_id: 'thief', token: lease.token });
    expect(renew).toMatchObject({ status: 409, body: { error: 'NOT_HOLDER' } });
    expect((await get<{ holders: unknown[] }>(a(), `/locks/${resource}`)).body.holders).toHaveLength(1);
    expect((await release(a(), lease)).status).toBe(200);
    expect((await release(a(), lease)).body).toMatchObject({ error: 'NOT_HOLDER' });
  });

  it('answers LOCK_TIMEOUT with the holders when wait_ms elapses', async () => {
    const resource = unique('timeout');
    const lease = await grant(a(), resource, { client_id: 'slow' });
    const started = Date.now();
    const answer = await acquire(b(), resource, { client_id: 'impatient', wait_ms: 300 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(answer).toMatchObject({
      status: 409,
      body: { error: 'LOCK_TIMEOUT', holders: [{ client_id: 'slow' }] },
    });
    expect((await get<{ waiters: unknown[] }>(a(), `/locks/${resource}`)).body.waiters).toEqual([]);
    await release(a(), lease);
  });

  it('returns the lease to a holder asking again in the same mode and refuses the other mode', async () => {
    const resource = unique('again');
    const lease = await grant(a(), resource, { client_id: 'again', mode: 'shared' });
    expect(await grant(b(), resource, { client_id: 'again', mode: 'shared' })).toMatchObject({
      token: lease.token,
    });
    expect((await acquire(b(), resource, { client_id: 'again' })).body).toMatchObject({
      error: 'LOCK_MODE_MISMATCH',
    });
    await release(a(), lease);
  });

  it.each([
    [{ client_id: 'x', mode: 'upgradable' }, 'mode'],
    [{ client_id: 'x', ttl_ms: -5 }, 'ttl_ms'],
    [{ client_id: 'x', ttl_ms: 600_001 }, 'ttl_ms'],
    [{ client_id: 'x', wait_ms: 60_001 }, 'wait_ms'],
    [{ client_id: 'x', wait_ms: 1.5 }, 'wait_ms'],
    [{ client_id: '' }, 'client_id'],
    [{ client_id: 'x', extra: 1 }, 'extra'],
  ])('refuses %j with 400 naming %s', async (body, field) => {
    const answer = await post<{ error: string; details: { field: string }[] }>(
      a(),
      `/locks/valid/acquire`,
      body,
    );
    expect(answer.status).toBe(400);
    expect(answer.body.error).toBe('VALIDATION_FAILED');
    expect(answer.body.details.map((d) => d.field)).toContain(field);
  });

  it('refuses a resource name outside the allowed characters with 400', async () => {
    const answer = await post<{ details: { field: string }[] }>(a(), `/locks/a*b/acquire`, {
      client_id: 'x',
    });
    expect(answer.status).toBe(400);
    expect(answer.body.details).toEqual([{ field: 'resource', message: expect.any(String) }]);
    expect((await get(a(), `/locks/bad%20name`)).status).toBe(400);
  });

  it("serves the seed's routes: acquire with success true, release by client id, status", async () => {
    const resource = unique('seed');
    const acquired = await post(a(), '/lock/acquire', {
      resource_id: resource,
      client_id: 'app',
      lock_type: 'exclusive',
    });
    expect(acquired).toMatchObject({
      status: 200,
      body: { success: true, resource, client_id: 'app', token: 1 },
    });
    expect((await post(b(), '/lock/acquire', { resource_id: resource, client_id: 'app2' })).status).toBe(409);
    expect(await post(b(), '/lock/release', { resource_id: resource, client_id: 'app' })).toMatchObject({
      status: 200,
      body: { success: true, token: 1 },
    });
    expect(
      (await post(b(), '/lock/release', { resource_id: resource, client_id: 'app' })).body,
    ).toMatchObject({
      error: 'NOT_HOLDER',
    });
    const status = await get(a(), '/status');
    expect(status).toMatchObject({ status: 200, body: { status: 'ok', service: 'lock-service' } });
  });

  it('lists the held resources and pages the audit log with filters', async () => {
    const resource = unique('audit');
    const first = await grant(a(), resource, { client_id: 'c1', ttl_ms: 300 });
    await acquire(b(), resource, { client_id: 'c2' });
    const waited = await grant(b(), resource, { client_id: 'c2', wait_ms: 10_000 });
    await release(b(), waited);
    const listed = await get<{ locks: { resource: string }[] }>(a(), '/locks?limit=1000');
    expect(listed.body.locks.map((l) => l.resource)).not.toContain(resource);

    const events = (await auditOf(a(), resource)).map((e) => [e.event, e.client_id, e.token]);
    expect(events).toEqual([
      ['request', 'c1', null],
      ['grant', 'c1', first.token],
      ['request', 'c2', null],
      ['refusal', 'c2', null],
      ['request', 'c2', null],
      ['wait', 'c2', null],
      ['expiry', 'c1', first.token],
      ['grant', 'c2', waited.token],
      ['release', 'c2', waited.token],
    ]);
    const pages: string[][] = [];
    let cursor = '';
    for (let i = 0; i < 10; i++) {
      const page = await get<{ entries: { event: string }[]; next_cursor: string | null }>(
        b(),
        `/locks/audit?resource=${resource}&client_id=c2&limit=2${cursor}`,
      );
      pages.push(page.body.entries.map((e) => e.event));
      if (!page.body.next_cursor) break;
      cursor = `&cursor=${page.body.next_cursor}`;
    }
    expect(pages.flat()).toEqual(['request', 'refusal', 'request', 'wait', 'grant', 'release']);
    expect(pages[0]).toHaveLength(2);
    const newest = await get<{ entries: { event: string }[] }>(
      a(),
      `/locks/audit?resource=${resource}&order=desc&limit=1`,
    );
    expect(newest.body.entries.map((e) => e.event)).toEqual(['release']);
  });

  it('serves the same operations over NATS request/reply', async () => {
    const nc = await connect({ servers: TEST_NATS_URL });
    try {
      const subjects = lockSubjects(cluster.namespace);
      const call = async (subject: string, body: unknown) =>
        (await nc.request(subject, JSON.stringify(body), { timeout: 10_000 })).json<
          Record<string, unknown>
        >();
      const resource = unique('nats');
      const granted = await call(subjects.acquire, { resource, client_id: 'n1', ttl_ms: 10_000 });
      expect(granted).toMatchObject({ resource, client_id: 'n1', mode: 'exclusive', token: 1 });
      expect(await call(subjects.acquire, { resource, client_id: 'n2' })).toMatchObject({
        statusCode: 409,
        error: 'LOCK_CONFLICT',
      });
      const waiting = call(subjects.acquire, { resource, client_id: 'n2', wait_ms: 10_000 });
      await waitForWaiters(a(), resource, 1);
      expect(await call(subjects.get, { resource })).toMatchObject({
        holders: [{ client_id: 'n1' }],
        waiters: [{ client_id: 'n2' }],
      });
      expect(await call(subjects.release, { resource, client_id: 'n1', token: 1 })).toMatchObject({
        released: true,
      });
      expect(await waiting).toMatchObject({ token: 2 });
      expect(
        await call(subjects.renew, { resource, client_id: 'n2', token: 2, ttl_ms: 5_000 }),
      ).toMatchObject({ token: 2 });
      expect(await call(subjects.acquire, { resource, client_id: 'n3', mode: 'bogus' })).toMatchObject({
        statusCode: 400,
        error: 'VALIDATION_FAILED',
      });
      const audit = (await call(subjects.audit, { resource })) as { entries: { event: string }[] };
      expect(audit.entries.map((e) => e.event)).toContain('renew');
      expect(await call(subjects.release, { resource, client_id: 'n2', token: 2 })).toMatchObject({
        released: true,
      });
    } finally {
      await nc.close();
    }
  });
});
