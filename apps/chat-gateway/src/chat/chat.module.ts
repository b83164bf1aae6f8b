import { Module } from '@nestjs/common';

import { DeliveryModule } from '../delivery/delivery.module.js';
import { ChatMetricsModule } from '../metrics/chat-metrics.module.js';
import { PresenceModule } from '../presence/presence.module.js';
import { SimulationModule } from '../simulation/simulation.module.js';
import { ChatController } from './chat.controller.js';
import { ChatGateway } from './chat.gateway.js';
import { ChatService } from './chat.service.js';

/** The chat's edges: the Socket.IO gateway and the HTTP routes. */
@Module({
  imports: [PresenceModule, SimulationModule, ChatMetricsModule, DeliveryModule],
  controllers: [ChatController],
  providers: [ChatService, ChatGateway],
})
export class ChatModule {}
