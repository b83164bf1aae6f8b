/**
 * `npm run migrate`: applies pending migrations to DATABASE_URL in schema DB_SCHEMA (same defaults as
 * the services) and says what it applied; exits 1 with the reason when it cannot.
 */
import 'reflect-metadata';

import { commonEnv, ConfigError, loadConfig } from '@lib/config';
import { migrate } from '@lib/persistence';

import { describeError, redactUrl } from './start/errors.js';

const migrateEnv = { DATABASE_URL: commonEnv.DATABASE_URL, DB_SCHEMA: commonEnv.DB_SCHEMA };

try {
  const { DATABASE_URL: url, DB_SCHEMA: schema } = loadConfig(migrateEnv);
  try {
    const applied = await migrate({ url, schema, poolSize: 1, applicationName: 'migrate' });
    if (applied.length === 0) {
      process.stdout.write(`migrate: schema ${schema} on ${redactUrl(url)} is up to date\n`);
    } else {
      process.stdout.write(
        `migrate: applied ${applied.length} migration(s) to schema ${schema} on ${redactUrl(url)}:\n`,
      );
      for (const name of applied) process.stdout.write(`  - ${name}\n`);
    }
  } catch (error) {
    process.stderr.write(
      `migrate: failed on ${redactUrl(url)} (schema ${schema}): ${describeError(error)}\n`,
    );
    process.exitCode = 1;
  }
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`migrate: ${error.message}\n`);
  process.exitCode = 1;
}
