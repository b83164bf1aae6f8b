import { Logger } from '@nestjs/common';
import pg from 'pg';

import { createDataSource, type DatabaseOptions } from './data-source.js';

const logger = new Logger('Migrations');

/**
 * Creates the schema and runs pending migrations, each in its own transaction, under a Postgres
 * advisory lock: replicas starting together run them once, the others wait and find nothing to do.
 */
export async function migrate(options: DatabaseOptions): Promise<string[]> {
  const lockClient = new pg.Client({
    connectionString: options.url,
    application_name: `${options.applicationName}:migrate`,
  });
  await lockClient.connect();
  try {
    await lockClient.query(`SELECT pg_advisory_lock(hashtext($1))`, [`toolkit-migrations:${options.schema}`]);
    await lockClient.query(`CREATE SCHEMA IF NOT EXISTS "${options.schema}"`);
    const dataSource = createDataSource({ ...options, poolSize: 1 });
    await dataSource.initialize();
    try {
      const applied = await dataSource.runMigrations({ transaction: 'each' });
      for (const migration of applied) logger.log(`applied ${migration.name} in schema ${options.schema}`);
      return applied.map((m) => m.name);
    } finally {
      await dataSource.destroy();
    }
  } finally {
    await lockClient.end();
  }
}
