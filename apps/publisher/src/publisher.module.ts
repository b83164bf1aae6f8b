import { type DynamicModule, Module } from '@nestjs/common';
import { eventStreamDeclarations, queueStreamDeclarations } from '@lib/messaging';
import { EventQueryModule, EventStatsController } from '@lib/persistence';
import { ServicePlatformModule } from '@lib/platform';

import { PublishModule } from './publish/publish.module.js';
import type { PublisherConfig } from './publisher.env.js';
import { QueueModule } from './queue/queue.module.js';

/** The ingress: `POST /publish` into JetStream, reads of the event store, and the work queue. */
@Module({})
export class PublisherModule {
  static forRoot(config: PublisherConfig): DynamicModule {
    return {
      module: PublisherModule,
      imports: [
        ServicePlatformModule.forRoot({
          service: 'publisher',
          config,
          streams: [...eventStreamDeclarations(config), ...queueStreamDeclarations(config)],
        }),
        EventQueryModule,
        PublishModule,
        QueueModule,
      ],
      controllers: [EventStatsController],
    };
  }
}
