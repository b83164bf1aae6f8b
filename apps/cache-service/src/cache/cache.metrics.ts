import { Inject, Injectable } from '@nestjs/common';
import { METRICS_REGISTRY } from '@lib/observability';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

import { CoherenceService } from '../coherence/coherence.service.js';
import { LocalCache } from '../coherence/local-cache.js';

/**
 * Prometheus view of the cache. The hot path only bumps plain counters (`LocalCache.counters`,
 * `CoherenceService.counters`); these metrics read them when `/metrics` is scraped.
 */
@Injectable()
export class CacheMetrics {
  private readonly writeSeconds: Histogram<'operation'>;
  private readonly invalidationSeconds: Histogram;

  constructor(
    @Inject(METRICS_REGISTRY) registry: Registry,
    @Inject(LocalCache) local: LocalCache,
    @Inject(CoherenceService) coherence: CoherenceService,
  ) {
    const counter = (name: string, help: string, read: () => number): void => {
      new Counter({
        name,
        help,
        registers: [registry],
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    };
    counter('cache_hits_total', 'Reads answered from memory', () => local.counters.hits);
    counter('cache_misses_total', 'Reads answered from the database', () => local.counters.misses);
    counter(
      'cache_db_reads_total',
      'Database reads of entries (one per key for concurrent misses)',
      () => local.counters.dbReads,
    );
    counter(
      'cache_evictions_total',
      'Entries pushed out by the capacity limit',
      () => local.counters.evictions,
    );
    counter(
      'cache_expirations_total',
      'Entries dropped because their TTL ran out',
      () => local.counters.expirations,
    );
    counter(
      'cache_discarded_fills_total',
      'Database reads not kept in memory because an invalidation or a loss of coherence overtook them',
      () => local.counters.discardedFills,
    );
    counter(
      'cache_invalidations_sent_total',
      'Invalidations published',
      () => coherence.counters.invalidationsSent,
    );
    counter(
      'cache_invalidations_received_total',
      'Invalidations received from other replicas',
      () => coherence.counters.invalidationsReceived,
    );
    counter(
      'cache_lease_waits_total',
      'Replicas that did not acknowledge an invalidation in time and whose lease was waited out',
      () => coherence.counters.leaseWaits,
    );
    counter(
      'cache_sequence_gaps_total',
      'Invalidation sequence gaps detected',
      () => coherence.counters.sequenceGaps,
    );
    counter('cache_resyncs_total', 'Times memory was dropped to resync', () => coherence.counters.resyncs);
    new Gauge({
      name: 'cache_entries',
      help: 'Entries in memory',
      registers: [registry],
      collect() {
        this.set(local.size);
      },
    });
    new Gauge({
      name: 'cache_coherent',
      help: '1 while this replica serves reads from memory',
      registers: [registry],
      collect() {
        this.set(local.serving ? 1 : 0);
      },
    });
    this.writeSeconds = new Histogram({
      name: 'cache_write_seconds',
      help: 'PUT/DELETE from request to answer: commit, invalidation and acknowledgements (or lease waits)',
      labelNames: ['operation'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    });
    this.invalidationSeconds = new Histogram({
      name: 'cache_invalidation_seconds',
      help: 'From the commit to the last acknowledgement of the other replicas',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1, 5],
      registers: [registry],
    });
  }

  observeWrite(operation: 'put' | 'delete', seconds: number, invalidationMs: number): void {
    this.writeSeconds.observe({ operation }, seconds);
    this.invalidationSeconds.observe(invalidationMs / 1000);
  }
}
