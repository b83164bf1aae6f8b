import { type DynamicModule, Module } from '@nestjs/common';
import { AppConfigModule } from '@lib/config';
import { checkNats, eventStreamDeclarations, MessagingModule, NatsClient } from '@lib/messaging';
import { ObservabilityModule } from '@lib/observability';
import { checkPostgres, EventQueryModule, PersistenceModule } from '@lib/persistence';
import { DataSource } from 'typeorm';

import type { AggregatorConfig } from './aggregator.env.js';
import { DeadLetterModule } from './dead-letters/dead-letter.module.js';
import { IngestModule } from './ingest/ingest.module.js';
import { StatsController } from './stats/stats.controller.js';

/** Consumes the events stream into Postgres, exactly once in effect; serves stats, events and dead letters. */
@Module({})
export class AggregatorModule {
  static forRoot(config: AggregatorConfig): DynamicModule {
    return {
      module: AggregatorModule,
      imports: [
        AppConfigModule.forRoot(config),
        ObservabilityModule.forRoot({
          service: 'aggregator',
          logLevel: config.LOG_LEVEL,
          healthChecks: {
            inject: [NatsClient, DataSource],
            useFactory: (nats: NatsClient, db: DataSource) => [
              () => checkNats(nats),
              () => checkPostgres(db),
            ],
          },
        }),
        MessagingModule.forRoot({
          connection: {
            url: config.NATS_URL,
            name: 'aggregator',
            user: config.NATS_USER,
            password: config.NATS_PASSWORD,
            token: config.NATS_TOKEN,
          },
          streams: eventStreamDeclarations(config.NATS_NAMESPACE, {
            maxBytes: config.STREAM_MAX_BYTES,
            replicas: config.STREAM_REPLICAS,
            duplicateWindowMs: config.DUPLICATE_WINDOW_MS,
          }),
        }),
        PersistenceModule.forRoot({
          database: {
            url: config.DATABASE_URL,
            schema: config.DB_SCHEMA,
            poolSize: config.DB_POOL_SIZE,
            applicationName: 'aggregator',
          },
          migrateOnStart: config.MIGRATE_ON_START,
        }),
        EventQueryModule,
        IngestModule,
        DeadLetterModule,
      ],
      controllers: [StatsController],
    };
  }
}
