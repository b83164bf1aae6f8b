import { Module } from '@nestjs/common';

import { IngestMetrics } from './ingest.metrics.js';
import { IngestService } from './ingest.service.js';

@Module({
  providers: [IngestMetrics, IngestService],
  exports: [IngestService],
})
export class IngestModule {}
