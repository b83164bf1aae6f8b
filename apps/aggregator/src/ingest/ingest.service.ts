import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG } from '@lib/config';
import { messagingNames, type MessagingNames } from '@lib/contracts';
import { NatsClient } from '@lib/messaging';
import { EventStoreRepository } from '@lib/persistence';

import type { AggregatorConfig } from '../aggregator.env.js';
import { IngestMetrics } from './ingest.metrics.js';
import { PartitionIngestor } from './partition-ingestor.js';

/**
 * Runs one ingestor per partition this replica owns. Which partitions those are is decided by the
 * ownership module, which starts an ingestor only while it holds the partition's lease.
 */
@Injectable()
export class IngestService {
  private readonly logger = new Logger(IngestService.name);
  private readonly names: MessagingNames;
  private readonly running = new Map<number, PartitionIngestor>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AggregatorConfig,
    @Inject(NatsClient) private readonly nats: NatsClient,
    @Inject(EventStoreRepository) private readonly store: EventStoreRepository,
    @Inject(IngestMetrics) private readonly metrics: IngestMetrics,
  ) {
    this.names = messagingNames(config.NATS_NAMESPACE);
    metrics.watchLag(
      () => this.partitions(),
      async (partition) => {
        const info = await nats.jsm.consumers.info(
          this.names.eventsStream,
          this.names.eventsConsumer(partition),
        );
        return info.num_pending + info.num_ack_pending;
      },
    );
  }

  /** The partitions being consumed here, in order. */
  partitions(): number[] {
    return [...this.running.keys()].sort((a, b) => a - b);
  }

  /** Starts consuming `partition` from its committed watermark; the caller holds its lease. */
  startPartition(partition: number): void {
    if (this.running.has(partition)) return;
    const ingestor = new PartitionIngestor(
      partition,
      this.names,
      this.config,
      this.nats,
      this.store,
      this.metrics,
    );
    this.running.set(partition, ingestor);
    ingestor.start();
  }

  /**
   * Stops consuming `partition`: the batch in hand is committed and acked (or, if it cannot be, left
   * unacked for the next owner), the rest stays in the stream. The lease may be released after this.
   */
  async stopPartition(partition: number): Promise<void> {
    const ingestor = this.running.get(partition);
    if (!ingestor) return;
    await ingestor.stop();
    this.running.delete(partition);
    this.metrics.forgetPartition(partition);
  }

  async stopAll(): Promise<void> {
    const partitions = this.partitions();
    await Promise.all(partitions.map((p) => this.stopPartition(p)));
    if (partitions.length > 0) this.logger.log(`stopped partitions ${partitions.join(',')}`);
  }
}
