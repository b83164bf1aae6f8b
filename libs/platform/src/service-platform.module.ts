import { type DynamicModule, Module } from '@nestjs/common';
import { AppConfigModule, type commonEnv, type ConfigOf } from '@lib/config';
import { MessagingModule, NatsClient, type StreamDeclaration } from '@lib/messaging';
import { ApiKeyGuard, ObservabilityModule } from '@lib/observability';
import { APP_GUARD } from '@nestjs/core';
import { PersistenceModule } from '@lib/persistence';
import { DataSource } from 'typeorm';

import { checkNats, checkPostgres } from './dependency-health.js';

export interface ServicePlatformOptions {
  /** The service's name: in logs, metrics, the NATS connection and `pg_stat_activity`. */
  service: string;
  /** The validated configuration (at least the variables every service reads). */
  config: ConfigOf<typeof commonEnv>;
  /** The streams the service needs, declared at start-up. */
  streams: StreamDeclaration[];
}

/**
 * What every service of the product stands on, wired once: the validated config, JSON logs, metrics,
 * `/health` over NATS and Postgres, the optional API key on HTTP writes, the NATS connection with the service's streams, and the database
 * with its migrations. A service module imports this and adds its own feature modules.
 */
@Module({})
export class ServicePlatformModule {
  static forRoot({ service, config, streams }: ServicePlatformOptions): DynamicModule {
    return {
      module: ServicePlatformModule,
      imports: [
        AppConfigModule.forRoot(config),
        ObservabilityModule.forRoot({
          service,
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
            name: service,
            user: config.NATS_USER,
            password: config.NATS_PASSWORD,
            token: config.NATS_TOKEN,
          },
          streams,
        }),
        PersistenceModule.forRoot({
          database: {
            url: config.DATABASE_URL,
            schema: config.DB_SCHEMA,
            poolSize: config.DB_POOL_SIZE,
            applicationName: service,
          },
          migrateOnStart: config.MIGRATE_ON_START,
        }),
      ],
      providers: [{ provide: APP_GUARD, useFactory: () => new ApiKeyGuard(config.API_KEY) }],
    };
  }
}
