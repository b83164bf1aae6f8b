import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { APP_CONFIG } from '@lib/config';
import { DomainError, NotFoundError, UnavailableError } from '@lib/contracts';
import { isTransientDatabaseError } from '@lib/persistence';

import type { CacheServiceConfig } from '../cache-service.env.js';
import { CoherenceService, type InvalidationReport } from '../coherence/coherence.service.js';
import { LocalCache, type StoredEntry } from '../coherence/local-cache.js';
import { checkKey } from './cache-key.js';
import { ValueTooLargeError } from './cache.errors.js';
import { CacheMetrics } from './cache.metrics.js';
import { CacheRepository } from './cache.repository.js';

/** The answer to a write: the version it committed and what invalidating the other replicas took. */
export interface WriteResult {
  key: string;
  version: number;
  /** Time to live of the entry in ms, or null when it never expires. */
  ttl_ms: number | null;
  invalidation: InvalidationReport;
}

export interface DeleteResult {
  key: string;
  deleted: true;
  version: number;
  invalidation: InvalidationReport;
}

export interface CacheStats {
  replica: string;
  /** Whether this replica serves reads from memory right now (else every read goes to the database). */
  coherent: boolean;
  hits: number;
  misses: number;
  hit_ratio: number;
  evictions: number;
  expirations: number;
  size: number;
  capacity: number;
  db_reads: number;
  coalesced: number;
  discarded_fills: number;
  invalidations_sent: number;
  invalidations_received: number;
  lease_waits: number;
  sequence_gaps: number;
  resyncs: number;
}

const PURGE_INTERVAL_MS = 60_000;

/**
 * Reads through this replica's memory and writes through Postgres; a write answers only after the
 * coherence protocol made sure no replica serves the value it replaced.
 */
@Injectable()
export class CacheService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(CacheService.name);
  private purgeTimer?: NodeJS.Timeout;

  constructor(
    @Inject(APP_CONFIG) private readonly config: CacheServiceConfig,
    @Inject(CacheRepository) private readonly repository: CacheRepository,
    @Inject(LocalCache) private readonly local: LocalCache,
    @Inject(CoherenceService) private readonly coherence: CoherenceService,
    @Inject(CacheMetrics) private readonly metrics: CacheMetrics,
  ) {}

  onApplicationBootstrap(): void {
    this.purgeTimer = setInterval(() => {
      this.repository.purgeExpired().catch((error: unknown) => {
        this.logger.warn(`purge of expired entries failed: ${String(error)}`);
      });
    }, PURGE_INTERVAL_MS);
    this.purgeTimer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.purgeTimer);
  }

  /**
   * The entry as a JSON document `{key, value, version, source}`, built from the stored JSON text
   * without parsing it. A hit answers synchronously; a miss reads the database (once for all
   * concurrent misses of the key).
   */
  read(key: string): string | Promise<string> {
    checkKey(key);
    const hit = this.local.lookup(key);
    if (hit !== undefined) return documentOf(key, hit, 'memory');
    return this.readThrough(key);
  }

  private async readThrough(key: string): Promise<string> {
    const entry = await this.guard(() => this.local.miss(key, () => this.repository.find(key)));
    if (entry === undefined) throw new NotFoundError(`no entry for key ${key}`);
    return documentOf(key, entry, 'database');
  }

  /** Commits `value` under a new version, then invalidates every replica's copy. */
  async write(key: string, value: unknown, ttlMs: number | undefined): Promise<WriteResult> {
    checkKey(key);
    const valueJson = JSON.stringify(value);
    const bytes = Buffer.byteLength(valueJson);
    if (bytes > this.config.CACHE_MAX_VALUE_BYTES) {
      throw new ValueTooLargeError(
        `value is ${bytes} bytes of JSON, over the limit of ${this.config.CACHE_MAX_VALUE_BYTES}`,
        [{ field: 'value', message: `at most ${this.config.CACHE_MAX_VALUE_BYTES} bytes of JSON` }],
      );
    }
    const ttl =
      ttlMs ?? (this.config.CACHE_DEFAULT_TTL_MS > 0 ? this.config.CACHE_DEFAULT_TTL_MS : undefined);
    const started = performance.now();
    const version = await this.guard(() => this.repository.storeValue(key, valueJson, ttl));
    const invalidation = await this.guard(() => this.coherence.invalidateEverywhere(key, version));
    this.metrics.observeWrite('put', (performance.now() - started) / 1000, invalidation.ms);
    return { key, version, ttl_ms: ttl ?? null, invalidation };
  }

  /**
   * Deletes `key`, then invalidates every replica's copy; 404 when there was no live entry (after
   * invalidating all the same, so the answer never overtakes a concurrent write's invalidation).
   */
  async remove(key: string): Promise<DeleteResult> {
    checkKey(key);
    const started = performance.now();
    const { version, existed } = await this.guard(() => this.repository.deleteKey(key));
    const invalidation = await this.guard(() => this.coherence.invalidateEverywhere(key, version));
    this.metrics.observeWrite('delete', (performance.now() - started) / 1000, invalidation.ms);
    if (!existed) throw new NotFoundError(`no entry for key ${key}`);
    return { key, deleted: true, version, invalidation };
  }

  stats(): CacheStats {
    const local = this.local.counters;
    const coherence = this.coherence.counters;
    const reads = local.hits + local.misses;
    return {
      replica: this.coherence.replicaId,
      coherent: this.coherence.coherent,
      hits: local.hits,
      misses: local.misses,
      hit_ratio: reads === 0 ? 0 : Math.round((local.hits / reads) * 10_000) / 10_000,
      evictions: local.evictions,
      expirations: local.expirations,
      size: this.local.size,
      capacity: this.local.capacity,
      db_reads: local.dbReads,
      coalesced: local.coalesced,
      discarded_fills: local.discardedFills,
      invalidations_sent: coherence.invalidationsSent,
      invalidations_received: coherence.invalidationsReceived,
      lease_waits: coherence.leaseWaits,
      sequence_gaps: coherence.sequenceGaps,
      resyncs: coherence.resyncs,
    };
  }

  /** A database that cannot be reached is a 503 with Retry-After, not a 500. */
  private async guard<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof DomainError || !isTransientDatabaseError(error)) throw error;
      throw new UnavailableError(
        `database unavailable: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }
}

/** `{key, value, version, source}` with the value's JSON text spliced in as stored. */
function documentOf(key: string, entry: StoredEntry, source: 'memory' | 'database'): string {
  // keys are [A-Za-z0-9._:-]: nothing to escape
  return `{"key":"${key}","value":${entry.value},"version":${entry.version},"source":"${source}"}`;
}
