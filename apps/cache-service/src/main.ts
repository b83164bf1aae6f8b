import 'reflect-metadata';

import { loadConfig } from '@lib/config';
import { createHttpApp, listen, runService } from '@lib/observability';

import { cacheServiceEnv, checkCacheServiceConfig } from './cache-service.env.js';
import { CacheServiceModule } from './cache-service.module.js';

/** Room for the request's JSON around a value of the largest size. */
const BODY_OVERHEAD_BYTES = 64 * 1024;

await runService('cache-service', async () => {
  const config = checkCacheServiceConfig(loadConfig(cacheServiceEnv));
  const app = await createHttpApp(CacheServiceModule.forRoot(config), {
    title: 'cache-service',
    description:
      'Coherent replicated cache: Postgres is the source of truth, each replica keeps an LRU, writes invalidate every replica before they answer.',
    bodyLimit: config.CACHE_MAX_VALUE_BYTES + BODY_OVERHEAD_BYTES,
  });
  await listen(app, config.PORT, config.HOST, 'cache-service');
  return { app, shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS };
});
