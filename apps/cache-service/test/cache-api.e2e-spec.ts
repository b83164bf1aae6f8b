import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { waitFor } from '@lib/testing';

import { CacheCluster } from './cache-cluster.js';

/** Replica 1 holds every fill for this long between its database read and its insert (test-only hook). */
const FILL_DELAY_MS = 800;
const PLAIN = 0;
const DELAYED = 1;

describe('cache-service API', () => {
  let cluster: CacheCluster;

  beforeAll(async () => {
    cluster = await CacheCluster.start([{}, { CACHE_TEST_FILL_DELAY_MS: String(FILL_DELAY_MS) }], {
      CACHE_CAPACITY: '3',
      CACHE_MAX_VALUE_BYTES: '1024',
    });
  });

  afterAll(async () => {
    await cluster?.dispose();
  });

  it('writes, reads from the database then from memory, and deletes an entry', async () => {
    const written = await cluster.put(PLAIN, 'user:1', { value: { name: 'Ada' } });
    expect(written.status).toBe(200);
    expect(written.body).toMatchObject({
      key: 'user:1',
      ttl_ms: null,
      invalidation: { replicas: 1, acked: 1 },
    });

    const first = await cluster.get(PLAIN, 'user:1');
    const second = await cluster.get(PLAIN, 'user:1');
    expect(first).toEqual({
      status: 200,
      body: { key: 'user:1', value: { name: 'Ada' }, version: written.body.version, source: 'database' },
    });
    expect(second.body.source).toBe('memory');

    const deleted = await cluster.delete(PLAIN, 'user:1');
    expect(deleted.status).toBe(200);
    expect(deleted.body).toMatchObject({ key: 'user:1', deleted: true });
    expect((await cluster.get(PLAIN, 'user:1')).status).toBe(404);
    expect((await cluster.get(DELAYED, 'user:1')).status).toBe(404);
    const again = await cluster.delete(PLAIN, 'user:1');
    expect(again.status).toBe(404);
    expect(again.body).toMatchObject({ statusCode: 404, error: 'NOT_FOUND' });
  });

  it('stores any JSON value and returns it exactly as written', async () => {
    const values = [
      null,
      0,
      -1.5,
      'text',
      '',
      true,
      [1, 'a', null],
      { b: 1, a: { c: [2] } },
      'nul \u0000 é 😀',
    ];
    for (const [i, value] of values.entries()) {
      const raw = `{"value":${JSON.stringify(value)}}`;
      expect((await cluster.put(PLAIN, `json.${i}`, raw)).status).toBe(200);
      const response = await fetch(`${cluster.replica(PLAIN).url}/cache/json.${i}`);
      // key order and every character survive: the stored JSON text is served as it is
      expect(await response.text()).toContain(`"value":${JSON.stringify(value)},`);
    }
  });

  it("answers the seed's POST /cache/set {key, value}", async () => {
    const answer = await cluster.request<{ key: string; version: number }>('POST', PLAIN, '/cache/set', {
      key: 'seed:1',
      value: 'Data User 1',
    });
    expect(answer.status).toBe(200);
    expect(answer.body.key).toBe('seed:1');
    expect((await cluster.get(DELAYED, 'seed:1')).body.value).toBe('Data User 1');
  });

  it.each([
    ['a key with a space', 'PUT', '/cache/a%20b', { value: 1 }, 400, 'key'],
    ['a key with a slash', 'PUT', '/cache/a%2Fb', { value: 1 }, 400, 'key'],
    ['the reserved key stats', 'PUT', '/cache/stats', { value: 1 }, 400, 'key'],
    [
      'a key over 100 characters in the body',
      'POST',
      '/cache/set',
      { key: 'k'.repeat(101), value: 1 },
      400,
      'key',
    ],
    ['a key that is not a string', 'POST', '/cache/set', { key: 7, value: 1 }, 400, 'key'],
    ['a missing value', 'PUT', '/cache/bad.1', {}, 400, 'value'],
    ['an unknown field', 'PUT', '/cache/bad.2', { value: 1, extra: true }, 400, 'extra'],
    ['a ttl_ms of 0', 'PUT', '/cache/bad.3', { value: 1, ttl_ms: 0 }, 400, 'ttl_ms'],
    ['a fractional ttl_ms', 'PUT', '/cache/bad.4', { value: 1, ttl_ms: 1.5 }, 400, 'ttl_ms'],
    ['a ttl_ms that is text', 'PUT', '/cache/bad.5', { value: 1, ttl_ms: '100' }, 400, 'ttl_ms'],
    ['a value over CACHE_MAX_VALUE_BYTES', 'PUT', '/cache/bad.6', { value: 'x'.repeat(1100) }, 413, 'value'],
  ])('refuses %s', async (_case, method, path, body, status, field) => {
    const answer = await cluster.request<{ details?: { field: string }[] }>(method, PLAIN, path, body);
    expect(answer.status).toBe(status);
    expect(answer.body.details?.map((d) => d.field)).toContain(field);
  });

  it('refuses a body that is not JSON, a key too long for a URL, and writes nothing refused', async () => {
    const notJson = await cluster.request('PUT', PLAIN, '/cache/bad.7', '{"value":');
    expect(notJson.status).toBe(400);
    const longKey = await cluster.request<{ details?: { field: string }[] }>(
      'GET',
      PLAIN,
      `/cache/${'k'.repeat(101)}`,
    );
    expect(longKey.status).toBe(400);
    expect(longKey.body.details?.map((d) => d.field)).toContain('key');
    for (let i = 1; i <= 7; i++) expect((await cluster.get(PLAIN, `bad.${i}`)).status).toBe(404);
    expect((await cluster.get(PLAIN, 'a%20b')).status).toBe(400);
  });

  it('expires an entry after its ttl_ms, from memory and from the database', async () => {
    expect((await cluster.put(PLAIN, 'ttl.1', { value: 'soon gone', ttl_ms: 400 })).body.ttl_ms).toBe(400);
    await cluster.get(PLAIN, 'ttl.1');
    expect((await cluster.get(PLAIN, 'ttl.1')).body.source).toBe('memory');
    await waitFor(async () => (await cluster.get(PLAIN, 'ttl.1')).status === 404, {
      timeoutMs: 5_000,
      description: 'ttl.1 expired',
    });
    expect((await cluster.stats(PLAIN)).expirations).toBeGreaterThanOrEqual(1);
  });

  it('evicts the least recently used entry beyond CACHE_CAPACITY and counts it', async () => {
    const before = await cluster.stats(PLAIN);
    for (const key of ['lru.a', 'lru.b', 'lru.c', 'lru.d']) {
      await cluster.put(PLAIN, key, { value: key });
      await cluster.get(PLAIN, key);
    }
    const after = await cluster.stats(PLAIN);
    expect(after.size).toBe(3);
    expect(after.evictions - before.evictions).toBeGreaterThanOrEqual(1);
    expect((await cluster.get(PLAIN, 'lru.d')).body.source).toBe('memory');
    expect((await cluster.get(PLAIN, 'lru.a')).body.source).toBe('database');
  });

  it('reads the database once for 100 concurrent misses of one key', async () => {
    await cluster.put(PLAIN, 'hot', { value: { n: 1 } });
    const before = await cluster.stats(DELAYED);
    // the fill is held FILL_DELAY_MS after its read, so all 100 requests arrive while it is in flight
    const answers = await Promise.all(Array.from({ length: 100 }, () => cluster.get(DELAYED, 'hot')));
    const after = await cluster.stats(DELAYED);
    expect(answers.every((a) => a.status === 200 && a.body.source === 'database')).toBe(true);
    expect(after.db_reads - before.db_reads).toBe(1);
    expect(after.misses - before.misses).toBe(100);
    expect(after.coalesced - before.coalesced).toBe(99);
    expect((await cluster.get(DELAYED, 'hot')).body.source).toBe('memory');
  });

  it('never caches a fill that raced with an invalidation (fill held between read and insert)', async () => {
    const v1 = (await cluster.put(PLAIN, 'race', { value: 'old' })).body.version;
    const before = await cluster.stats(DELAYED);
    const racingRead = cluster.get(DELAYED, 'race'); // reads "old", then is held before inserting it
    await waitFor(async () => (await cluster.stats(DELAYED)).db_reads > before.db_reads, {
      timeoutMs: 5_000,
      description: 'the fill read the database',
    });
    const write = await cluster.put(PLAIN, 'race', { value: 'new' });
    expect(write.body.invalidation).toMatchObject({ replicas: 1, acked: 1 });
    // started before the write answered: the old value is a legal answer
    expect((await racingRead).body).toMatchObject({ value: 'old', version: v1 });

    const after = await cluster.get(DELAYED, 'race');
    expect(after.body).toMatchObject({ value: 'new', version: write.body.version, source: 'database' });
    expect((await cluster.stats(DELAYED)).discarded_fills - before.discarded_fills).toBe(1);
    expect((await cluster.get(DELAYED, 'race')).body).toMatchObject({ value: 'new', source: 'memory' });
  });

  it('serves stats, health, metrics and docs', async () => {
    const stats = await cluster.stats(PLAIN);
    expect(stats).toMatchObject({ coherent: true, capacity: 3 });
    expect(Object.keys(stats)).toEqual(
      expect.arrayContaining([
        'hits',
        'misses',
        'hit_ratio',
        'evictions',
        'invalidations_sent',
        'invalidations_received',
        'size',
      ]),
    );
    const base = cluster.replica(PLAIN).url;
    expect((await fetch(`${base}/health`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^cache_hits_total\{[^}]*\} \d+$/m);
    expect(metrics).toMatch(/^cache_invalidations_sent_total\{[^}]*\} [1-9]\d*$/m);
    expect((await fetch(`${base}/docs`)).status).toBe(200);
  });

  it('leaves the membership on SIGTERM, so writes stop counting the stopped replica at once', async () => {
    expect(await cluster.replica(DELAYED).stop()).toBe(0);
    const write = await cluster.put(PLAIN, 'after.stop', { value: 1 });
    expect(write.body.invalidation).toMatchObject({ replicas: 0, lease_waits: 0 });
  });
});
