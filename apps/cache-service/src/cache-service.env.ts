import { commonEnv, ConfigError, type ConfigOf, env } from '@lib/config';

export const cacheServiceEnv = {
  ...commonEnv,
  PORT: env.int(3004, 'HTTP port of the cache service', { min: 0, max: 65535 }),
  CACHE_CAPACITY: env.int(100, 'Entries each replica keeps in memory (LRU)', { min: 1, max: 1_000_000 }),
  CACHE_DEFAULT_TTL_MS: env.int(0, 'Time to live of an entry written without ttl_ms; 0 keeps it forever', {
    min: 0,
  }),
  CACHE_MAX_VALUE_BYTES: env.int(65_536, 'Largest value (its JSON text, in bytes); larger gets 413', {
    min: 16,
    max: 8 * 1024 * 1024,
  }),
  CACHE_LEASE_MS: env.int(3_000, 'Membership lease: how long a silent replica can delay a write', {
    min: 300,
    max: 60_000,
  }),
  CACHE_RENEW_INTERVAL_MS: env.int(1_000, 'How often a replica renews its lease (at most a third of it)', {
    min: 50,
  }),
  CACHE_ACK_TIMEOUT_MS: env.int(500, 'How long a writer waits for acks before waiting out leases instead', {
    min: 10,
    max: 60_000,
  }),
  CACHE_TEST_FILL_DELAY_MS: env.int(
    0,
    'Test only: delay between the database read of a fill and its insert',
    {
      min: 0,
      max: 60_000,
    },
  ),
};
export type CacheServiceConfig = ConfigOf<typeof cacheServiceEnv>;

/** Checks what one variable alone cannot: a lease must survive two missed renewals. */
export function checkCacheServiceConfig(config: CacheServiceConfig): CacheServiceConfig {
  if (config.CACHE_RENEW_INTERVAL_MS * 3 > config.CACHE_LEASE_MS) {
    throw new ConfigError([
      `CACHE_RENEW_INTERVAL_MS: ${config.CACHE_RENEW_INTERVAL_MS} is above a third of CACHE_LEASE_MS (${config.CACHE_LEASE_MS})`,
    ]);
  }
  return config;
}
