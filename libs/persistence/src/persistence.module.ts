import { DynamicModule, Logger, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';

import { dataSourceOptions, type DatabaseOptions } from './data-source.js';
import { EventStoreRepository } from './event-store.repository.js';
import { migrate } from './migrate.js';

export interface PersistenceOptions {
  database: DatabaseOptions;
  migrateOnStart: boolean;
}

/**
 * The TypeORM data source of a service, after running pending migrations when asked (guarded, so
 * replicas starting together are safe), and the shared repositories.
 */
@Module({})
export class PersistenceModule {
  static forRoot(opts: PersistenceOptions): DynamicModule {
    return {
      module: PersistenceModule,
      global: true,
      imports: [
        TypeOrmModule.forRootAsync({
          useFactory: async () => {
            if (opts.migrateOnStart) {
              const applied = await migrate(opts.database);
              if (applied.length === 0)
                new Logger('Migrations').log(`schema ${opts.database.schema} is up to date`);
            }
            return { ...dataSourceOptions(opts.database), retryAttempts: 3, retryDelay: 1_000 };
          },
        }),
      ],
      providers: [EventStoreRepository],
      exports: [EventStoreRepository],
    };
  }
}
