import { Inject, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import {
  ConnectedSocket,
  MessageBody,
  type OnGatewayConnection,
  type OnGatewayDisconnect,
  SubscribeMessage,
  WebSocketGateway,
  WebSocketServer,
} from '@nestjs/websockets';
import type { ChatAck } from '@lib/contracts';
import type { Server, Socket } from 'socket.io';

import { ChatMetricsService } from '../metrics/chat-metrics.service.js';
import { PresenceService } from '../presence/presence.service.js';
import { SimulationConfigService } from '../simulation/simulation-config.service.js';
import { refusal } from './chat.errors.js';
import { ChatService } from './chat.service.js';

interface SocketData {
  node?: string;
}

/**
 * The Socket.IO edge, with the seed's event names. Every request event answers through its
 * acknowledgement callback: `{ok: true, …}` or `{ok: false, error: {code, message, field?}}`.
 * Pushed to every client: `config_updated`, `presence`, `metrics_update`.
 */
@WebSocketGateway({ transports: ['websocket', 'polling'] })
export class ChatGateway implements OnGatewayConnection, OnGatewayDisconnect, OnApplicationBootstrap {
  private readonly logger = new Logger(ChatGateway.name);
  @WebSocketServer() private readonly server!: Server;

  constructor(
    @Inject(ChatService) private readonly chat: ChatService,
    @Inject(SimulationConfigService) private readonly simulation: SimulationConfigService,
    @Inject(PresenceService) private readonly presence: PresenceService,
    @Inject(ChatMetricsService) private readonly metrics: ChatMetricsService,
  ) {}

  onApplicationBootstrap(): void {
    this.simulation.onChange((config) => this.server?.emit('config_updated', config));
    this.presence.onChange((update) => this.server?.emit('presence', update));
    this.metrics.onUpdate((metrics) => this.server?.emit('metrics_update', metrics));
  }

  handleConnection(client: Socket): void {
    client.emit('config_updated', this.chat.config());
    client.emit('presence', this.chat.presenceView());
  }

  handleDisconnect(client: Socket): void {
    const node = (client.data as SocketData).node;
    if (node === undefined) return;
    (client.data as SocketData).node = undefined;
    this.chat
      .unregister(node)
      .catch((error: unknown) => this.logger.warn(`leave of ${node}: ${String(error)}`));
  }

  @SubscribeMessage('register')
  async register(@ConnectedSocket() client: Socket, @MessageBody() payload: unknown): Promise<ChatAck> {
    const data = client.data as SocketData;
    try {
      if (data.node !== undefined) {
        const previous = data.node;
        data.node = undefined;
        await this.chat.unregister(previous);
      }
      const registration = await this.chat.register(payload, (event, body) => client.emit(event, body));
      if (!client.connected) {
        await this.chat.unregister(registration.node);
        return refusal(new Error('disconnected while registering'));
      }
      data.node = registration.node;
      client.emit('registered', registration);
      return { ok: true, ...registration };
    } catch (error) {
      return refusal(error);
    }
  }

  @SubscribeMessage('send_message')
  async sendMessage(@ConnectedSocket() client: Socket, @MessageBody() payload: unknown): Promise<ChatAck> {
    try {
      return { ok: true, ...(await this.chat.send((client.data as SocketData).node, payload)) };
    } catch (error) {
      return refusal(error);
    }
  }

  @SubscribeMessage('pubsub_ack')
  pubsubAck(@ConnectedSocket() client: Socket, @MessageBody() payload: unknown): ChatAck {
    try {
      return { ok: true, ...this.chat.acknowledge((client.data as SocketData).node, payload) };
    } catch (error) {
      return refusal(error);
    }
  }

  @SubscribeMessage('update_config')
  async updateConfig(@MessageBody() payload: unknown): Promise<ChatAck> {
    try {
      return { ok: true, config: await this.chat.updateConfig(payload) };
    } catch (error) {
      return refusal(error);
    }
  }

  @SubscribeMessage('reset_metrics')
  resetMetrics(): ChatAck {
    this.chat.resetMetrics();
    return { ok: true };
  }

  @SubscribeMessage('get_state')
  state(): ChatAck {
    return {
      ok: true,
      config: this.chat.config(),
      presence: this.chat.presenceView(),
      metrics: this.chat.metricsNow(),
    };
  }
}
