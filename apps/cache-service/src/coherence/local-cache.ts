import { setTimeout as delay } from 'node:timers/promises';

import { LRUCache } from 'lru-cache';

/** One entry as the database holds it: the JSON text of the value, its version and what is left of its TTL. */
export interface StoredEntry {
  value: string;
  version: number;
  /** Milliseconds left to live (by the database clock when read); undefined: no expiry. */
  ttlMs?: number;
}

export interface LocalCacheOptions {
  capacity: number;
  /** Test only: a pause between the database read of a fill and its insert, to provoke the race with an invalidation. */
  fillDelayMs?: number;
  /** Monotonic milliseconds (injectable for tests). */
  now?: () => number;
}

/** What a read returns: the entry (undefined when the database has none) and where it came from. */
export interface CacheRead {
  entry: StoredEntry | undefined;
  source: 'memory' | 'database';
}

/** The counters of one replica's memory. */
export interface LocalCacheCounters {
  hits: number;
  misses: number;
  /** Database reads started by misses: one per key however many misses wait for it. */
  dbReads: number;
  /** Misses that waited for a database read another request had started. */
  coalesced: number;
  /** Entries pushed out by the capacity limit. */
  evictions: number;
  /** Entries dropped because their TTL ran out. */
  expirations: number;
  /** Fills whose result was not kept because an invalidation, or a loss of coherence, overtook them. */
  discardedFills: number;
}

/** A database read in flight for one key, shared by every miss that arrives before an invalidation. */
interface Fill {
  readonly generation: number;
  /** Highest version of an invalidation for the key that arrived while the read was in flight. */
  invalidatedUpTo: number;
  /** False once an invalidation arrived: later misses must not wait for a read that may predate the write. */
  joinable: boolean;
  promise?: Promise<StoredEntry | undefined>;
}

/**
 * One replica's memory: an LRU of versioned entries, served only while the replica is coherent.
 *
 * - `resume(validUntil)` / `extendLease` / `suspend`: the coherence protocol says whether memory may be
 *   served, and until when (the replica's own conservative view of its lease). `suspend` and `resume`
 *   both start a new generation: a fill that began in an earlier generation is never inserted, since
 *   it may have read the database before a write this replica never heard of.
 * - `read`: a hit answers from memory; misses of one key share one database read.
 * - `invalidate(key, version)`: drops a copy older than `version` and marks the fills in flight for
 *   the key, which are then inserted only if what they read is at least that version. Versions of a
 *   key increase in commit order, so a fill that read an older version read the value being replaced.
 */
export class LocalCache {
  readonly counters: LocalCacheCounters = {
    hits: 0,
    misses: 0,
    dbReads: 0,
    coalesced: 0,
    evictions: 0,
    expirations: 0,
    discardedFills: 0,
  };
  readonly capacity: number;
  private readonly entries: LRUCache<string, StoredEntry>;
  private readonly fills = new Map<string, Fill[]>();
  private readonly now: () => number;
  private readonly fillDelayMs: number;
  private generation = 0;
  private coherent = false;
  private validUntil = 0;

  constructor(options: LocalCacheOptions) {
    this.capacity = options.capacity;
    this.now = options.now ?? (() => performance.now());
    this.fillDelayMs = options.fillDelayMs ?? 0;
    this.entries = new LRUCache<string, StoredEntry>({
      max: options.capacity,
      // stale entries are never served: an expired one counts as a miss and is read again
      allowStale: false,
      perf: { now: this.now },
      // read the clock at every check instead of caching it for a millisecond
      ttlResolution: 0,
      dispose: (_value, _key, reason) => {
        if (reason === 'evict') this.counters.evictions++;
        else if (reason === 'expire') this.counters.expirations++;
      },
    });
  }

  /** True while memory may be served: the replica is coherent and its lease is valid by its own clock. */
  get serving(): boolean {
    return this.coherent && this.now() < this.validUntil;
  }

  /** Entries held now (expired ones purged first). */
  get size(): number {
    this.entries.purgeStale();
    return this.entries.size;
  }

  /** Starts serving from an empty memory, until `validUntil` (monotonic ms) unless extended. */
  resume(validUntil: number): void {
    this.clear();
    this.coherent = true;
    this.validUntil = validUntil;
  }

  extendLease(validUntil: number): void {
    this.validUntil = Math.max(this.validUntil, validUntil);
  }

  /** Stops serving and forgets everything; reads go to the database until `resume`. */
  suspend(): void {
    this.coherent = false;
    this.validUntil = 0;
    this.clear();
  }

  /** Forgets everything (a missed invalidation), and keeps serving what is read from now on. */
  clear(): void {
    this.generation++;
    this.entries.clear();
    for (const fills of this.fills.values()) for (const fill of fills) fill.joinable = false;
  }

  /** The entry from memory when it may be served, else undefined (counted as a hit only when found). */
  lookup(key: string): StoredEntry | undefined {
    if (!this.serving) return undefined;
    const entry = this.entries.get(key);
    if (entry !== undefined) this.counters.hits++;
    return entry;
  }

  /** A hit from memory, or the database's answer through `load`, shared with concurrent misses of the key. */
  async read(key: string, load: () => Promise<StoredEntry | undefined>): Promise<CacheRead> {
    const entry = this.lookup(key);
    if (entry !== undefined) return { entry, source: 'memory' };
    return { entry: await this.miss(key, load), source: 'database' };
  }

  /** Waits for the key's joinable fill, or starts one. */
  miss(key: string, load: () => Promise<StoredEntry | undefined>): Promise<StoredEntry | undefined> {
    this.counters.misses++;
    const pending = this.fills.get(key)?.find((fill) => fill.joinable);
    if (pending?.promise) {
      this.counters.coalesced++;
      return pending.promise;
    }
    return this.startFill(key, load);
  }

  /** Drops the key's copy if older than `version`, and marks its fills in flight. */
  invalidate(key: string, version: number): void {
    const cached = this.entries.peek(key);
    if (cached !== undefined && cached.version < version) this.entries.delete(key);
    for (const fill of this.fills.get(key) ?? []) {
      fill.joinable = false;
      fill.invalidatedUpTo = Math.max(fill.invalidatedUpTo, version);
    }
  }

  private startFill(
    key: string,
    load: () => Promise<StoredEntry | undefined>,
  ): Promise<StoredEntry | undefined> {
    const fill: Fill = { generation: this.generation, invalidatedUpTo: 0, joinable: true };
    const list = this.fills.get(key);
    if (list) list.push(fill);
    else this.fills.set(key, [fill]);
    this.counters.dbReads++;
    fill.promise = (async () => {
      try {
        const entry = await load();
        if (this.fillDelayMs > 0) await delay(this.fillDelayMs);
        if (entry !== undefined) this.insert(key, entry, fill);
        return entry;
      } finally {
        this.forget(key, fill);
      }
    })();
    return fill.promise;
  }

  private insert(key: string, entry: StoredEntry, fill: Fill): void {
    const current = fill.generation === this.generation && this.serving;
    if (!current || fill.invalidatedUpTo > entry.version) {
      this.counters.discardedFills++;
      return;
    }
    const cached = this.entries.peek(key);
    if (cached !== undefined && cached.version > entry.version) return;
    if (entry.ttlMs !== undefined && entry.ttlMs <= 0) return;
    this.entries.set(key, entry, entry.ttlMs === undefined ? {} : { ttl: entry.ttlMs });
  }

  private forget(key: string, fill: Fill): void {
    const list = this.fills.get(key);
    if (!list) return;
    const index = list.indexOf(fill);
    if (index >= 0) list.splice(index, 1);
    if (list.length === 0) this.fills.delete(key);
  }
}
