import { type DynamicModule, Module } from '@nestjs/common';
import { ServicePlatformModule } from '@lib/platform';

import type { ChatGatewayConfig } from './chat-gateway.env.js';
import { ChatModule } from './chat/chat.module.js';
import { chatStreamDeclarations } from './delivery/chat-streams.js';

/**
 * The real-time chat simulation: Socket.IO clients register as nodes and send direct (at most once) or
 * pubsub (at least once, through JetStream) under simulated loss and latency. The gateway keeps no
 * table of its own; it stands on the platform like every service (its `/health` checks Postgres too).
 */
@Module({})
export class ChatGatewayModule {
  static forRoot(config: ChatGatewayConfig): DynamicModule {
    return {
      module: ChatGatewayModule,
      imports: [
        ServicePlatformModule.forRoot({
          service: 'chat-gateway',
          config,
          streams: chatStreamDeclarations(config),
        }),
        ChatModule,
      ],
    };
  }
}
