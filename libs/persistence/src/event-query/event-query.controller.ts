import { Controller, Get, Inject, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { PipelineStats } from '@lib/contracts';

import type { EventPage } from '../event-store.repository.js';
import { EventQueryService } from './event-query.service.js';
import { ListEventsQuery } from './list-events.dto.js';

@ApiTags('events')
@Controller()
export class EventQueryController {
  constructor(@Inject(EventQueryService) private readonly events: EventQueryService) {}

  @Get('events')
  @ApiOperation({ summary: 'Stored events in ingestion order, cursor-paginated' })
  @ApiOkResponse({ description: '{events: [...], next_cursor}' })
  list(@Query() query: ListEventsQuery): Promise<EventPage> {
    return this.events.listEvents(query);
  }
}

/** `GET /stats` of the publisher: the pipeline's counters, read from the event store. */
@ApiTags('events')
@Controller()
export class EventStatsController {
  constructor(@Inject(EventQueryService) private readonly events: EventQueryService) {}

  @Get('stats')
  @ApiOperation({
    summary: 'received, unique_processed, duplicate_dropped, conflicting_duplicates, topics, uptime',
  })
  stats(): Promise<PipelineStats> {
    return this.events.getStats();
  }
}
