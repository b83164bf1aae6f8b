import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { APP_CONFIG } from '@lib/config';
import { messagingNames } from '@lib/contracts';
import { NatsClient } from '@lib/messaging';
import { EventStoreRepository } from '@lib/persistence';

import type { AggregatorConfig } from '../aggregator.env.js';
import { IngestMetrics } from './ingest.metrics.js';
import { PartitionIngestor } from './partition-ingestor.js';

/** Runs one ingestor per partition while the application is up; this replica owns every partition. */
@Injectable()
export class IngestService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(IngestService.name);
  readonly ingestors: PartitionIngestor[];

  constructor(
    @Inject(APP_CONFIG) config: AggregatorConfig,
    @Inject(NatsClient) nats: NatsClient,
    @Inject(EventStoreRepository) store: EventStoreRepository,
    @Inject(IngestMetrics) metrics: IngestMetrics,
  ) {
    const names = messagingNames(config.NATS_NAMESPACE);
    this.ingestors = Array.from(
      { length: config.PARTITIONS },
      (_, partition) => new PartitionIngestor(partition, names, config, nats, store, metrics),
    );
    metrics.watchLag(
      this.ingestors.map((i) => i.partition),
      async (partition) => {
        const info = await nats.jsm.consumers.info(names.eventsStream, names.eventsConsumer(partition));
        return info.num_pending + info.num_ack_pending;
      },
    );
  }

  onApplicationBootstrap(): void {
    for (const ingestor of this.ingestors) ingestor.start();
    this.logger.log(`consuming ${this.ingestors.length} partitions`);
  }

  /** Before NATS is drained: every partition finishes and acks its batch in hand. */
  async beforeApplicationShutdown(): Promise<void> {
    await Promise.all(this.ingestors.map((ingestor) => ingestor.stop()));
    this.logger.log('all partitions stopped');
  }
}
