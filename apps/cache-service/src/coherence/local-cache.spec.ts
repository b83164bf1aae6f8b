import { describe, expect, it } from '@jest/globals';

import { LocalCache, type StoredEntry } from './local-cache.js';

/** A database read the test answers when it chooses: how a fill is held between its read and its insert. */
class ControllableRead {
  calls = 0;
  private answers: ((entry: StoredEntry | undefined) => void)[] = [];

  readonly load = (): Promise<StoredEntry | undefined> => {
    this.calls++;
    return new Promise((resolve) => this.answers.push(resolve));
  };

  answer(entry: StoredEntry | undefined): void {
    const next = this.answers.shift();
    if (!next) throw new Error('no read in flight');
    next(entry);
  }
}

/** A clock the test moves by hand (ms). */
class ManualClock {
  ms = 1_000;
  readonly now = (): number => this.ms;
}

function entry(version: number, value: unknown = { v: version }, ttlMs?: number): StoredEntry {
  return { value: JSON.stringify(value), version, ttlMs };
}

function coherentCache(capacity = 100, clock = new ManualClock()): LocalCache {
  const cache = new LocalCache({ capacity, now: clock.now });
  cache.resume(clock.ms + 60_000);
  return cache;
}

const fromDatabase = (value: StoredEntry | undefined) => () => Promise.resolve(value);

describe(LocalCache.name, () => {
  it('answers a second read from memory', async () => {
    const cache = coherentCache();
    expect(await cache.read('k', fromDatabase(entry(1)))).toEqual({ entry: entry(1), source: 'database' });
    expect(await cache.read('k', fromDatabase(entry(9)))).toEqual({ entry: entry(1), source: 'memory' });
    expect(cache.counters).toMatchObject({ hits: 1, misses: 1, dbReads: 1 });
  });

  it('shares one database read among 100 concurrent misses of a key', async () => {
    const cache = coherentCache();
    const read = new ControllableRead();
    const reads = Array.from({ length: 100 }, () => cache.read('hot', read.load));
    read.answer(entry(4));
    const answers = await Promise.all(reads);
    expect(read.calls).toBe(1);
    expect(answers.every((a) => a.entry?.version === 4 && a.source === 'database')).toBe(true);
    expect(cache.counters).toMatchObject({ misses: 100, dbReads: 1, coalesced: 99 });
  });

  it('never caches a fill that read a version older than an invalidation received meanwhile', async () => {
    const cache = coherentCache();
    const read = new ControllableRead();
    const first = cache.read('k', read.load); // reads version 1 from the database …
    cache.invalidate('k', 2); // … while a write of version 2 commits and is invalidated
    read.answer(entry(1));
    expect((await first).entry?.version).toBe(1); // concurrent with the write: the old value is allowed

    const again = cache.read('k', read.load);
    expect(read.calls).toBe(2); // version 1 was not kept
    read.answer(entry(2));
    expect(await again).toEqual({ entry: entry(2), source: 'database' });
    expect(cache.counters.discardedFills).toBe(1);
  });

  it('caches a fill that already read the invalidated version', async () => {
    const cache = coherentCache();
    const read = new ControllableRead();
    const first = cache.read('k', read.load);
    cache.invalidate('k', 2);
    read.answer(entry(2));
    await first;
    expect((await cache.read('k', read.load)).source).toBe('memory');
  });

  it('does not let a read that arrives after an invalidation wait for a fill that predates it', async () => {
    const cache = coherentCache();
    const read = new ControllableRead();
    const early = cache.read('k', read.load);
    cache.invalidate('k', 5);
    const late = cache.read('k', read.load);
    expect(read.calls).toBe(2);
    read.answer(entry(4)); // the early read saw the value before the write
    read.answer(entry(5));
    expect((await early).entry?.version).toBe(4);
    expect((await late).entry?.version).toBe(5);
    expect((await cache.read('k', read.load)).entry?.version).toBe(5);
  });

  it('keeps every invalidation of a fill in flight, not only the first', async () => {
    const cache = coherentCache();
    const read = new ControllableRead();
    const fill = cache.read('k', read.load);
    cache.invalidate('k', 3);
    cache.invalidate('k', 7);
    read.answer(entry(3));
    await fill;
    const next = cache.read('k', read.load);
    expect(read.calls).toBe(2);
    read.answer(entry(7));
    await next;
  });

  it('drops a cached copy older than an invalidation and keeps a newer one', async () => {
    const cache = coherentCache();
    await cache.read('old', fromDatabase(entry(3)));
    await cache.read('new', fromDatabase(entry(8)));
    cache.invalidate('old', 4);
    cache.invalidate('new', 8);
    expect(cache.lookup('old')).toBeUndefined();
    expect(cache.lookup('new')?.version).toBe(8);
  });

  it('serves nothing from memory while suspended, and forgets what it held', async () => {
    const clock = new ManualClock();
    const cache = coherentCache(100, clock);
    await cache.read('k', fromDatabase(entry(1)));
    cache.suspend();
    expect(cache.serving).toBe(false);
    expect((await cache.read('k', fromDatabase(entry(2)))).source).toBe('database');
    cache.resume(clock.ms + 1_000);
    expect((await cache.read('k', fromDatabase(entry(2)))).entry?.version).toBe(2);
  });

  it('never inserts a fill that began before a suspension or a resume', async () => {
    const clock = new ManualClock();
    const cache = coherentCache(100, clock);
    const read = new ControllableRead();
    const beforeSuspend = cache.read('a', read.load);
    cache.suspend();
    const whileSuspended = cache.read('b', read.load);
    cache.resume(clock.ms + 1_000);
    read.answer(entry(1));
    read.answer(entry(1));
    await Promise.all([beforeSuspend, whileSuspended]);
    expect(cache.size).toBe(0);
    expect(cache.counters.discardedFills).toBe(2);
  });

  it('stops serving memory when its lease runs out by its own clock', async () => {
    const clock = new ManualClock();
    const cache = new LocalCache({ capacity: 10, now: clock.now });
    cache.resume(clock.ms + 100);
    await cache.read('k', fromDatabase(entry(1)));
    clock.ms += 99;
    expect(cache.lookup('k')?.version).toBe(1);
    clock.ms += 1;
    expect(cache.serving).toBe(false);
    expect(cache.lookup('k')).toBeUndefined();
    cache.extendLease(clock.ms + 100);
    expect(cache.lookup('k')?.version).toBe(1);
  });

  it('evicts the least recently used entry beyond its capacity, and counts it', async () => {
    const cache = coherentCache(2);
    await cache.read('a', fromDatabase(entry(1)));
    await cache.read('b', fromDatabase(entry(2)));
    await cache.read('a', fromDatabase(entry(1))); // a is now the most recently used
    await cache.read('c', fromDatabase(entry(3)));
    expect(cache.lookup('b')).toBeUndefined();
    expect(cache.lookup('a')?.version).toBe(1);
    expect(cache.counters.evictions).toBe(1);
    expect(cache.size).toBe(2);
  });

  it('expires an entry when its TTL runs out', async () => {
    const clock = new ManualClock();
    const cache = coherentCache(10, clock);
    await cache.read('k', fromDatabase(entry(1, 'x', 50)));
    clock.ms += 49;
    expect(cache.lookup('k')?.version).toBe(1);
    clock.ms += 2;
    expect(cache.lookup('k')).toBeUndefined();
    expect(cache.counters.expirations).toBe(1);
  });

  it('keeps nothing for a key the database does not have', async () => {
    const cache = coherentCache();
    expect(await cache.read('none', fromDatabase(undefined))).toEqual({
      entry: undefined,
      source: 'database',
    });
    expect(cache.size).toBe(0);
  });

  it('lets a failed read fail every waiter and the next read try again', async () => {
    const cache = coherentCache();
    const failing = () => Promise.reject(new Error('database down'));
    const reads = [cache.read('k', failing), cache.read('k', failing)];
    await expect(Promise.all(reads)).rejects.toThrow('database down');
    expect((await cache.read('k', fromDatabase(entry(1)))).entry?.version).toBe(1);
  });
});
