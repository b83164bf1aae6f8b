import { Module } from '@nestjs/common';

import { CoherenceModule } from '../coherence/coherence.module.js';
import { CacheController } from './cache.controller.js';
import { CacheMetrics } from './cache.metrics.js';
import { CacheRepository } from './cache.repository.js';
import { CacheService } from './cache.service.js';

/** The cache API: entries in Postgres, read through this replica's coherent memory. */
@Module({
  imports: [CoherenceModule],
  controllers: [CacheController],
  providers: [CacheRepository, CacheService, CacheMetrics],
})
export class CacheModule {}
