import { Controller, Get, Inject } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { PipelineStats } from '@lib/contracts';
import { EventQueryService } from '@lib/persistence';

import { type OwnershipView, OwnershipService } from '../ownership/ownership.service.js';

export type AggregatorStats = PipelineStats & OwnershipView;

@ApiTags('events')
@Controller('stats')
export class StatsController {
  constructor(
    @Inject(EventQueryService) private readonly events: EventQueryService,
    @Inject(OwnershipService) private readonly ownership: OwnershipService,
  ) {}

  @Get()
  @ApiOperation({
    summary:
      'Exact pipeline counters from Postgres, the live replicas and the partitions each owns (the same on every ' +
      'replica), and which replica answered',
  })
  async stats(): Promise<AggregatorStats> {
    const [stats, ownership] = await Promise.all([this.events.getStats(), this.ownership.view()]);
    return { ...stats, ...ownership };
  }
}
