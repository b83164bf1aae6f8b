import { hostname } from 'node:os';

import { Controller, Get, Inject } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { PipelineStats } from '@lib/contracts';
import { EventQueryService } from '@lib/persistence';

import { IngestService } from '../ingest/ingest.service.js';

export interface AggregatorStats extends PipelineStats {
  replica: string;
  partitions: { count: number; owned: number[] };
}

@ApiTags('events')
@Controller('stats')
export class StatsController {
  private readonly replica = `${hostname()}:${process.pid}`;

  constructor(
    @Inject(EventQueryService) private readonly events: EventQueryService,
    @Inject(IngestService) private readonly ingest: IngestService,
  ) {}

  @Get()
  @ApiOperation({
    summary:
      'Exact pipeline counters from Postgres (same on every replica), plus this replica and its partitions',
  })
  async stats(): Promise<AggregatorStats> {
    const stats = await this.events.getStats();
    const owned = this.ingest.ingestors.map((i) => i.partition);
    return { ...stats, replica: this.replica, partitions: { count: owned.length, owned } };
  }
}
