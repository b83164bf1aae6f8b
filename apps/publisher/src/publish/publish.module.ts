import { Module } from '@nestjs/common';

import { EventBatchValidator } from './event-batch.validator.js';
import { PublishController } from './publish.controller.js';
import { PublishService } from './publish.service.js';

@Module({
  controllers: [PublishController],
  providers: [EventBatchValidator, PublishService],
})
export class PublishModule {}
