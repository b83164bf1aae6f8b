import { Module } from '@nestjs/common';
import { APP_CONFIG } from '@lib/config';

import type { CacheServiceConfig } from '../cache-service.env.js';
import { CoherenceService } from './coherence.service.js';
import { LocalCache } from './local-cache.js';
import { MembershipRepository } from './membership.repository.js';

/** This replica's memory and the protocol that keeps it coherent with the others (leases + write-invalidate). */
@Module({
  providers: [
    {
      provide: LocalCache,
      inject: [APP_CONFIG],
      useFactory: (config: CacheServiceConfig) =>
        new LocalCache({ capacity: config.CACHE_CAPACITY, fillDelayMs: config.CACHE_TEST_FILL_DELAY_MS }),
    },
    MembershipRepository,
    CoherenceService,
  ],
  exports: [LocalCache, CoherenceService],
})
export class CoherenceModule {}
