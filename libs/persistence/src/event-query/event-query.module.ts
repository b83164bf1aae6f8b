import { Module } from '@nestjs/common';

import { EventQueryController } from './event-query.controller.js';
import { EventQueryService } from './event-query.service.js';

/** `GET /events` and the query service behind `GET /stats`; needs `PersistenceModule`. */
@Module({
  controllers: [EventQueryController],
  providers: [EventQueryService],
  exports: [EventQueryService],
})
export class EventQueryModule {}
