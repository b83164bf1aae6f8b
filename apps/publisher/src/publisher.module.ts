import { type DynamicModule, Module } from '@nestjs/common';
import { eventStreamDeclarations } from '@lib/messaging';
import { EventQueryModule, EventStatsController } from '@lib/persistence';
import { ServicePlatformModule } from '@lib/platform';

import { PublishModule } from './publish/publish.module.js';
import type { PublisherConfig } from './publisher.env.js';

/** The ingress: `POST /publish` into JetStream, plus reads of the event store. */
@Module({})
export class PublisherModule {
  static forRoot(config: PublisherConfig): DynamicModule {
    return {
      module: PublisherModule,
      imports: [
        ServicePlatformModule.forRoot({
          service: 'publisher',
          config,
          streams: eventStreamDeclarations(config),
        }),
        EventQueryModule,
        PublishModule,
      ],
      controllers: [EventStatsController],
    };
  }
}
