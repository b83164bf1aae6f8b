import { Body, Controller, Get, HttpCode, Inject, Post, Put } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { ChatConfig, ChatMetrics, PresenceUpdate } from '@lib/contracts';

import { ChatService } from './chat.service.js';

/** The chat state over HTTP, for scripts and curl; the same use cases as the socket events. */
@ApiTags('chat')
@Controller('chat')
export class ChatController {
  constructor(@Inject(ChatService) private readonly chat: ChatService) {}

  @Get('config')
  @ApiOperation({ summary: 'The simulation config shared by every replica' })
  config(): ChatConfig {
    return this.chat.config();
  }

  @Put('config')
  @ApiOperation({
    summary: 'Changes some settings (400 naming the field when out of range; nothing changes)',
  })
  updateConfig(@Body() body: Record<string, unknown>): Promise<ChatConfig> {
    return this.chat.updateConfig(body);
  }

  @Get('metrics')
  @ApiOperation({ summary: 'Delivery metrics per method, over every live replica' })
  metrics(): ChatMetrics {
    return this.chat.metricsNow();
  }

  @Post('metrics/reset')
  @HttpCode(204)
  @ApiOperation({ summary: 'Zeroes the metrics of every replica' })
  resetMetrics(): void {
    this.chat.resetMetrics();
  }

  @Get('nodes')
  @ApiOperation({ summary: 'Registered nodes over every replica, and nodes away within the recovery window' })
  nodes(): PresenceUpdate {
    return this.chat.presenceView();
  }
}
