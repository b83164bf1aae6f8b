import { Inject, Injectable } from '@nestjs/common';
import type { StoredBatch } from '@lib/persistence';
import { METRICS_REGISTRY } from '@lib/observability';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Prometheus metrics of the ingest path (the exact counters live in Postgres; these are per process). */
@Injectable()
export class IngestMetrics {
  private readonly events: Counter<'outcome'>;
  private readonly batches: Counter<'outcome'>;
  private readonly commitSeconds: Histogram;
  private readonly watermark: Gauge<'partition'>;
  private readonly registry: Registry;

  constructor(@Inject(METRICS_REGISTRY) registry: Registry) {
    this.registry = registry;
    this.events = new Counter({
      name: 'aggregator_events_total',
      help: 'Events committed by this process, by outcome (received, unique, duplicate, conflicting)',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.batches = new Counter({
      name: 'aggregator_batches_total',
      help: 'Consume-loop batches by outcome (handled, retried, dead_lettered, repositioned)',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.commitSeconds = new Histogram({
      name: 'aggregator_commit_seconds',
      help: 'Time to commit one batch (rows, counters, watermark)',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [registry],
    });
    this.watermark = new Gauge({
      name: 'aggregator_partition_watermark',
      help: 'Last stream sequence committed, per partition',
      labelNames: ['partition'],
      registers: [registry],
    });
  }

  /**
   * Per-partition lag, read from the server when `/metrics` is scraped: messages of the partition not
   * yet delivered plus delivered but not yet acked (committed). A partition that cannot be read (NATS
   * down) is left out of that scrape; so is one this replica does not own.
   */
  watchLag(partitionsOf: () => number[], lagOf: (partition: number) => Promise<number>): void {
    new Gauge({
      name: 'aggregator_partition_lag_messages',
      help: 'Messages of a partition not yet committed (pending + in flight), read at scrape time',
      labelNames: ['partition'],
      registers: [this.registry],
      async collect() {
        this.reset();
        const partitions = partitionsOf();
        const lags = await Promise.allSettled(partitions.map(lagOf));
        lags.forEach((lag, i) => {
          if (lag.status === 'fulfilled') this.set({ partition: String(partitions[i]) }, lag.value);
        });
      },
    });
  }

  observeStored(partition: number, stored: StoredBatch, watermark: number, seconds: number): void {
    this.events.inc({ outcome: 'received' }, stored.received);
    this.events.inc({ outcome: 'unique' }, stored.uniqueProcessed);
    this.events.inc({ outcome: 'duplicate' }, stored.duplicateDropped);
    this.events.inc({ outcome: 'conflicting' }, stored.conflicting);
    this.watermark.set({ partition: String(partition) }, watermark);
    this.commitSeconds.observe(seconds);
  }

  /** Drops the per-partition series of a partition that moved to another replica. */
  forgetPartition(partition: number): void {
    this.watermark.remove({ partition: String(partition) });
  }

  observeBatch(outcome: string): void {
    this.batches.inc({ outcome });
  }
}
