import { Module } from '@nestjs/common';
import { Kvm } from '@nats-io/kv';
import { APP_CONFIG } from '@lib/config';
import { queueNames } from '@lib/contracts';
import { NatsClient } from '@lib/messaging';

import type { PublisherConfig } from '../publisher.env.js';
import { QueueController, SeedQueueController } from './queue.controller.js';
import { LEASE_BUCKET, QueueLeaseStore } from './queue-lease.store.js';
import { QueueService } from './queue.service.js';
import { QueueStream } from './queue-stream.js';

/** The work-queue façade: push, pop, ack, nack over JetStream, with the seed's routes as aliases. */
@Module({
  controllers: [QueueController, SeedQueueController],
  providers: [
    {
      provide: LEASE_BUCKET,
      inject: [APP_CONFIG, NatsClient],
      // the bucket's stream is declared with the queue's streams at start-up; this only binds to it
      useFactory: (config: PublisherConfig, nats: NatsClient) => {
        const names = queueNames(config.NATS_NAMESPACE);
        return new Kvm(nats.js).open(names.leaseBucket, {
          allow_direct: true,
          streamName: names.leaseStream,
        });
      },
    },
    QueueLeaseStore,
    QueueStream,
    QueueService,
  ],
})
export class QueueModule {}
