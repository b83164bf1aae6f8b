import { type DynamicModule, Module } from '@nestjs/common';
import { ServicePlatformModule } from '@lib/platform';

import type { CacheServiceConfig } from './cache-service.env.js';
import { CacheModule } from './cache/cache.module.js';

/** The coherent replicated cache: Postgres is the truth, each replica an LRU kept coherent over NATS. */
@Module({})
export class CacheServiceModule {
  static forRoot(config: CacheServiceConfig): DynamicModule {
    return {
      module: CacheServiceModule,
      imports: [
        // invalidations travel on core NATS: the cache declares no stream
        ServicePlatformModule.forRoot({ service: 'cache-service', config, streams: [] }),
        CacheModule,
      ],
    };
  }
}
