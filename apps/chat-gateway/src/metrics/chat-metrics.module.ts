import { Module } from '@nestjs/common';

import { PresenceModule } from '../presence/presence.module.js';
import { ChatMetricsService } from './chat-metrics.service.js';

/** Delivery metrics per method, summed over every live replica. */
@Module({ imports: [PresenceModule], providers: [ChatMetricsService], exports: [ChatMetricsService] })
export class ChatMetricsModule {}
