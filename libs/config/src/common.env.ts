import { env } from './env-spec.js';

/** Variables every service reads: where NATS and Postgres are, and how the process serves HTTP and logs. */
export const commonEnv = {
  HOST: env.string('127.0.0.1', 'Address the HTTP server listens on (0.0.0.0 in containers)'),
  NATS_URL: env.url('nats://127.0.0.1:4222', 'NATS server URL(s), comma-separated', ['nats:', 'tls:']),
  NATS_USER: env.optional('NATS user name'),
  NATS_PASSWORD: env.optional('NATS password'),
  NATS_TOKEN: env.optional('NATS auth token'),
  API_KEY: env.optional(
    'When set, every HTTP write (POST, PUT, DELETE, …) needs it in x-api-key or Authorization: Bearer',
  ),
  NATS_NAMESPACE: env.string(
    'toolkit',
    'Prefix of every stream and subject, so deployments can share one NATS',
    /^[A-Za-z0-9_-]{1,32}$/,
  ),
  DATABASE_URL: env.url('postgres://postgres@127.0.0.1:5432/postgres', 'PostgreSQL connection URL', [
    'postgres:',
    'postgresql:',
  ]),
  DB_SCHEMA: env.string('public', 'PostgreSQL schema holding the tables', /^[a-z_][a-z0-9_]{0,62}$/),
  DB_POOL_SIZE: env.int(10, 'PostgreSQL connections per process', { min: 1, max: 200 }),
  MIGRATE_ON_START: env.bool(true, 'Run pending migrations at start-up (guarded by an advisory lock)'),
  PARTITIONS: env.int(16, 'Number of event partitions; must be the same for every publisher and aggregator', {
    min: 1,
    max: 1024,
  }),
  LOG_LEVEL: env.oneOf(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const,
    'info',
    'Log level',
  ),
  SHUTDOWN_TIMEOUT_MS: env.int(10_000, 'How long a graceful shutdown may take before the process exits', {
    min: 100,
  }),
};
