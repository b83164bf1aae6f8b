import { type DynamicModule, Module } from '@nestjs/common';
import { AppConfigModule } from '@lib/config';
import { checkNats, eventStreamDeclarations, MessagingModule, NatsClient } from '@lib/messaging';
import { ObservabilityModule } from '@lib/observability';
import { checkPostgres, EventQueryModule, EventStatsController, PersistenceModule } from '@lib/persistence';
import { DataSource } from 'typeorm';

import { PublishModule } from './publish/publish.module.js';
import type { PublisherConfig } from './publisher.env.js';

/** The ingress: `POST /publish` into JetStream, plus reads of the event store. */
@Module({})
export class PublisherModule {
  static forRoot(config: PublisherConfig): DynamicModule {
    return {
      module: PublisherModule,
      imports: [
        AppConfigModule.forRoot(config),
        ObservabilityModule.forRoot({
          service: 'publisher',
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
            name: 'publisher',
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
            applicationName: 'publisher',
          },
          migrateOnStart: config.MIGRATE_ON_START,
        }),
        EventQueryModule,
        PublishModule,
      ],
      controllers: [EventStatsController],
    };
  }
}
