import { type DynamicModule, Module } from '@nestjs/common';
import { eventStreamDeclarations } from '@lib/messaging';
import { EventQueryModule } from '@lib/persistence';
import { ServicePlatformModule } from '@lib/platform';

import type { AggregatorConfig } from './aggregator.env.js';
import { DeadLetterModule } from './dead-letters/dead-letter.module.js';
import { OwnershipModule } from './ownership/ownership.module.js';
import { StatsController } from './stats/stats.controller.js';

/** Consumes the events stream into Postgres, exactly once in effect; serves stats, events and dead letters. */
@Module({})
export class AggregatorModule {
  static forRoot(config: AggregatorConfig): DynamicModule {
    return {
      module: AggregatorModule,
      imports: [
        ServicePlatformModule.forRoot({
          service: 'aggregator',
          config,
          streams: eventStreamDeclarations(config),
        }),
        EventQueryModule,
        OwnershipModule,
        DeadLetterModule,
      ],
      controllers: [StatsController],
    };
  }
}
