import { Module } from '@nestjs/common';

import { ChatMetricsModule } from '../metrics/chat-metrics.module.js';
import { PresenceModule } from '../presence/presence.module.js';
import { SimulationModule } from '../simulation/simulation.module.js';
import { DeliveryService } from './delivery.service.js';

/** Direct and pubsub delivery under the simulated network. */
@Module({
  imports: [PresenceModule, SimulationModule, ChatMetricsModule],
  providers: [DeliveryService],
  exports: [DeliveryService],
})
export class DeliveryModule {}
