import { commonEnv, type ConfigOf, env } from '@lib/config';

export const lockServiceEnv = {
  ...commonEnv,
  PORT: env.int(3003, 'HTTP port of the lock service', { min: 0, max: 65535 }),
  LOCK_DEFAULT_TTL_MS: env.int(30_000, 'Lease of a grant when the request names no ttl_ms', {
    min: 1,
    max: 86_400_000,
  }),
  LOCK_MAX_TTL_MS: env.int(600_000, 'Longest lease a request may ask for (ttl_ms)', {
    min: 1,
    max: 86_400_000,
  }),
  LOCK_MAX_WAIT_MS: env.int(60_000, 'Longest time a request may wait for a lock (wait_ms)', {
    min: 0,
    max: 3_600_000,
  }),
  LOCK_SWEEP_INTERVAL_MS: env.int(
    1_000,
    'How often a replica settles resources whose leases ran out unnoticed (records their expiry)',
    { min: 50, max: 600_000 },
  ),
};
export type LockServiceConfig = ConfigOf<typeof lockServiceEnv>;
