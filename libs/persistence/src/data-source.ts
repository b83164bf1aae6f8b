import { DataSource, type DataSourceOptions } from 'typeorm';

import { CreatedEventStore1763900000000 } from './migrations/1763900000000-CreatedEventStore.js';
import { AddedEventConstraints1763900100000 } from './migrations/1763900100000-AddedEventConstraints.js';
import { CreatedLockTables1763900200000 } from './migrations/1763900200000-CreatedLockTables.js';
import { CreatedCacheTables1763900300000 } from './migrations/1763900300000-CreatedCacheTables.js';
import { CreatedAggregatorMembers1763900400000 } from './migrations/1763900400000-CreatedAggregatorMembers.js';

export interface DatabaseOptions {
  url: string;
  schema: string;
  poolSize: number;
  /** Name shown in `pg_stat_activity`. */
  applicationName: string;
}

/** Every migration, in order; listed explicitly so the built output needs no glob. */
export const MIGRATIONS = [
  CreatedEventStore1763900000000,
  AddedEventConstraints1763900100000,
  CreatedLockTables1763900200000,
  CreatedCacheTables1763900300000,
  CreatedAggregatorMembers1763900400000,
];

/** TypeORM options for the product's database: raw-SQL repositories, the schema on the search path. */
export function dataSourceOptions(options: DatabaseOptions): DataSourceOptions {
  return {
    type: 'postgres',
    url: options.url,
    schema: options.schema,
    applicationName: options.applicationName,
    entities: [],
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    synchronize: false,
    logging: false,
    extra: {
      max: options.poolSize,
      options: `-c search_path=${options.schema}`,
      connectionTimeoutMillis: 5_000,
      // a statement stuck behind a dead connection must fail, so the caller can retry it elsewhere
      query_timeout: 60_000,
    },
  };
}

export function createDataSource(options: DatabaseOptions): DataSource {
  return new DataSource(dataSourceOptions(options));
}
