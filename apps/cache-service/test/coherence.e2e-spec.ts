import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { connect } from '@nats-io/transport-node';
import { type CacheInvalidation, cacheSubjects } from '@lib/contracts';
import { TcpProxy, TEST_NATS_URL, waitFor } from '@lib/testing';

import { CacheCluster } from './cache-cluster.js';

/** Shorter than the defaults so that waiting out a lease costs the suite little. */
const LEASE_MS = 2_000;
const ACK_TIMEOUT_MS = 1_000;
/** What a write may take when a replica is silent: ack timeout + a whole lease + slack for a busy machine. */
const WRITE_BOUND_MS = ACK_TIMEOUT_MS + LEASE_MS + 3_000;
/** Replica 2 reaches NATS through a proxy the tests can cut. */
const CUT = 2;

interface Read {
  key: string;
  replica: number;
  startedAt: number;
  version: number;
  source: string;
}

interface Write {
  key: string;
  answeredAt: number;
  version: number;
}

/** Reads that started after a write of their key answered, yet returned an older version. */
function staleReads(reads: Read[], writes: Write[]): { read: Read; newerAnswered: Write }[] {
  const stale: { read: Read; newerAnswered: Write }[] = [];
  for (const read of reads) {
    let newest: Write | undefined;
    for (const write of writes) {
      if (
        write.key === read.key &&
        write.answeredAt < read.startedAt &&
        write.version > (newest?.version ?? 0)
      )
        newest = write;
    }
    if (newest && newest.version > read.version) stale.push({ read, newerAnswered: newest });
  }
  return stale;
}

describe('cache-service coherence across three replicas', () => {
  let cluster: CacheCluster;
  let proxy: TcpProxy;

  beforeAll(async () => {
    proxy = await new TcpProxy(Number(new URL(TEST_NATS_URL).port)).start();
    cluster = await CacheCluster.start([{}, {}, { NATS_URL: proxy.url('nats') }], {
      CACHE_LEASE_MS: String(LEASE_MS),
      CACHE_RENEW_INTERVAL_MS: String(LEASE_MS / 4),
      CACHE_ACK_TIMEOUT_MS: String(ACK_TIMEOUT_MS),
    });
  });

  afterAll(async () => {
    await cluster?.dispose();
    await proxy?.dispose();
  });

  async function waitCoherent(index: number): Promise<void> {
    await waitFor(async () => (await cluster.stats(index)).coherent, {
      timeoutMs: 15_000,
      description: `replica ${index} coherent`,
    });
  }

  it('never returns an older version to a read that started after a write answered (thousands of operations)', async () => {
    const keys = ['rw.a', 'rw.b', 'rw.c', 'rw.d'];
    const writes: Write[] = [];
    const reads: Read[] = [];
    for (const key of keys) {
      const answer = await cluster.put(0, key, { value: 0 });
      writes.push({ key, answeredAt: performance.now(), version: answer.body.version });
    }
    const WRITES_PER_WRITER = 150;
    let writersDone = 0;
    const writer = async (replica: number): Promise<void> => {
      for (let n = 1; n <= WRITES_PER_WRITER; n++) {
        const key = keys[(n * 7 + replica) % keys.length];
        const answer = await cluster.put(replica, key, { value: { replica, n } });
        expect(answer.status).toBe(200);
        writes.push({ key, answeredAt: performance.now(), version: answer.body.version });
      }
      writersDone++;
    };
    const reader = async (id: number): Promise<void> => {
      // bounded: stops with the writers, or after enough reads
      for (let n = 0; writersDone < 3 && n < 2_000; n++) {
        const key = keys[(n + id) % keys.length];
        const replica = (n + id) % 3;
        const startedAt = performance.now();
        const answer = await cluster.get(replica, key);
        expect(answer.status).toBe(200);
        reads.push({ key, replica, startedAt, version: answer.body.version, source: answer.body.source });
      }
    };
    await Promise.all([writer(0), writer(1), writer(2), ...Array.from({ length: 6 }, (_, id) => reader(id))]);

    expect(writes.length).toBe(keys.length + 3 * WRITES_PER_WRITER);
    expect(reads.length).toBeGreaterThan(1_500);
    // the test means something only if memory was really served, on every replica
    for (const replica of [0, 1, 2]) {
      expect(reads.filter((r) => r.replica === replica && r.source === 'memory').length).toBeGreaterThan(50);
    }
    expect(staleReads(reads, writes)).toEqual([]);
    // (a replica starved of CPU beyond CACHE_ACK_TIMEOUT_MS is waited out, not read stale: lease_waits may be > 0)
  });

  it('stops serving memory on a replica cut off by a silent partition; the writer answers after its lease', async () => {
    await waitCoherent(CUT);
    await cluster.put(0, 'cut.silent', { value: 'v1' });
    await cluster.get(CUT, 'cut.silent');
    expect((await cluster.get(CUT, 'cut.silent')).body).toMatchObject({ value: 'v1', source: 'memory' });

    proxy.partition();
    try {
      const started = performance.now();
      const write = await cluster.put(0, 'cut.silent', { value: 'v2' });
      const took = performance.now() - started;
      expect(write.status).toBe(200);
      expect(write.body.invalidation.replicas).toBe(2);
      expect(write.body.invalidation.lease_waits).toBeGreaterThanOrEqual(1);
      expect(took).toBeLessThan(WRITE_BOUND_MS);

      for (let i = 0; i < 5; i++) {
        expect((await cluster.get(CUT, 'cut.silent')).body).toMatchObject({
          value: 'v2',
          source: 'database',
        });
      }
      expect((await cluster.stats(CUT)).coherent).toBe(false);
    } finally {
      proxy.heal();
    }
    await waitCoherent(CUT);
    await cluster.get(CUT, 'cut.silent');
    expect((await cluster.get(CUT, 'cut.silent')).body).toMatchObject({ value: 'v2', source: 'memory' });
  });

  it('stops serving memory at once on a replica whose NATS connection drops', async () => {
    await waitCoherent(CUT);
    await cluster.put(1, 'cut.drop', { value: 'v1' });
    await cluster.get(CUT, 'cut.drop');
    expect((await cluster.get(CUT, 'cut.drop')).body.source).toBe('memory');

    proxy.disconnect();
    try {
      await waitFor(async () => !(await cluster.stats(CUT)).coherent, {
        timeoutMs: 3_000,
        description: 'the cut replica suspends its memory',
      });
      expect((await cluster.get(CUT, 'cut.drop')).body).toMatchObject({ value: 'v1', source: 'database' });
      const started = performance.now();
      const write = await cluster.put(1, 'cut.drop', { value: 'v2' });
      expect(performance.now() - started).toBeLessThan(WRITE_BOUND_MS);
      expect(write.status).toBe(200);
      expect((await cluster.get(CUT, 'cut.drop')).body).toMatchObject({ value: 'v2', source: 'database' });
    } finally {
      proxy.heal();
    }
    await waitCoherent(CUT);
  });

  it('forgets its memory when an invalidation sequence skips a number', async () => {
    await cluster.put(0, 'gap', { value: 1 });
    await cluster.get(1, 'gap');
    expect((await cluster.get(1, 'gap')).body.source).toBe('memory');
    const before = await cluster.stats(1);

    const nc = await connect({ servers: TEST_NATS_URL });
    try {
      const subject = cacheSubjects(cluster.namespace).invalidations;
      const send = (sequence: number): void => {
        const invalidation: CacheInvalidation = {
          replica: 'a-sender-of-the-test',
          sequence,
          key: 'unrelated',
          version: 1,
          sent_at: Date.now(),
        };
        nc.publish(subject, JSON.stringify(invalidation));
      };
      send(1);
      send(3); // 2 never arrives
      await nc.flush();
    } finally {
      await nc.close();
    }
    await waitFor(async () => (await cluster.stats(1)).sequence_gaps === before.sequence_gaps + 1, {
      timeoutMs: 5_000,
      description: 'the gap is seen',
    });
    // a key the gap did not name is dropped too: the missed invalidation could have been about it
    expect((await cluster.get(1, 'gap')).body.source).toBe('database');
  });

  it('answers a write within a lease when a replica is killed, then stops waiting for it', async () => {
    await cluster.put(0, 'kill', { value: 1 });
    await cluster.replica(1).kill('SIGKILL');

    const started = performance.now();
    const first = await cluster.put(0, 'kill', { value: 2 });
    expect(performance.now() - started).toBeLessThan(WRITE_BOUND_MS);
    expect(first.body.invalidation.replicas).toBe(2);
    expect(first.body.invalidation.lease_waits).toBeGreaterThanOrEqual(1);

    // the killed replica's lease was revoked and has run out: it is no longer waited for
    const second = await cluster.put(0, 'kill', { value: 3 });
    expect(second.body.invalidation.replicas).toBeLessThanOrEqual(1);
    expect((await cluster.get(CUT, 'kill')).body.value).toBe(3);
  });
});
