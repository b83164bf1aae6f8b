import type {
  ChatAck,
  ChatConfig,
  ChatMessage,
  ChatMetrics,
  DeliveredMessage,
  DeliveryFailure,
  PresenceUpdate,
} from '@lib/contracts';
import { waitFor } from '@lib/testing';
import { io, type Socket } from 'socket.io-client';

export interface ClientOptions {
  /** Answer every pubsub_message with pubsub_ack (what the dashboard does); default true. */
  autoAck?: boolean;
}

/**
 * A chat node as a test sees it: a socket.io-client connected over WebSocket, recording every event the
 * gateway pushes to it, acking pubsub messages unless told not to.
 */
export class ChatClient {
  readonly messages: DeliveredMessage[] = [];
  readonly attempts: ChatMessage[] = [];
  readonly failures: DeliveryFailure[] = [];
  readonly configs: ChatConfig[] = [];
  readonly presence: PresenceUpdate[] = [];
  readonly metrics: ChatMetrics[] = [];
  node?: string;

  private constructor(
    readonly socket: Socket,
    private readonly options: ClientOptions,
  ) {
    socket.on('message', (m: DeliveredMessage) => this.messages.push(m));
    socket.on('pubsub_message', (m: ChatMessage) => {
      this.attempts.push(m);
      if (this.options.autoAck !== false && this.node !== undefined)
        socket.emit('pubsub_ack', { msg_id: m.msg_id, node: this.node });
    });
    socket.on('delivery_failed', (f: DeliveryFailure) => this.failures.push(f));
    socket.on('config_updated', (c: ChatConfig) => this.configs.push(c));
    socket.on('presence', (p: PresenceUpdate) => this.presence.push(p));
    socket.on('metrics_update', (m: ChatMetrics) => this.metrics.push(m));
  }

  static async connect(url: string, options: ClientOptions = {}): Promise<ChatClient> {
    const socket = io(url, { transports: ['websocket'], reconnection: false, forceNew: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', reject);
    });
    return new ChatClient(socket, options);
  }

  /** Connects and registers `node`; throws when the gateway refuses. */
  static async node(url: string, node: string, options: ClientOptions = {}): Promise<ChatClient> {
    const client = await ChatClient.connect(url, options);
    const answer = await client.register(node);
    if (!answer.ok) throw new Error(`register ${node}: ${JSON.stringify(answer.error)}`);
    return client;
  }

  async register(node: string): Promise<ChatAck<{ recovered: boolean; missed: number; replica: string }>> {
    const answer = await this.request<{ recovered: boolean; missed: number; replica: string }>('register', {
      node,
    });
    if (answer.ok) this.node = node;
    return answer;
  }

  send(to: string, method: string, content: string): Promise<ChatAck<{ msg_id: string; seq?: number }>> {
    return this.request('send_message', { from: this.node, to, method, content });
  }

  updateConfig(update: Record<string, unknown>): Promise<ChatAck<{ config: ChatConfig }>> {
    return this.request('update_config', update);
  }

  request<T extends object = Record<string, unknown>>(event: string, payload?: unknown): Promise<ChatAck<T>> {
    return this.socket.timeout(15_000).emitWithAck(event, payload) as Promise<ChatAck<T>>;
  }

  /** Sends `count` messages to `to`, at most `window` unanswered at a time; returns the refusals. */
  async sendMany(to: string, method: string, count: number, window = 200): Promise<number> {
    let next = 0;
    let refused = 0;
    const worker = async (): Promise<void> => {
      while (next < count) {
        const index = next++;
        const answer = await this.send(to, method, `m${index}`);
        if (!answer.ok) refused += 1;
      }
    };
    await Promise.all(Array.from({ length: Math.min(window, count) }, () => worker()));
    return refused;
  }

  latestMetrics(): ChatMetrics | undefined {
    return this.metrics.at(-1);
  }

  async waitForMessages(count: number, timeoutMs = 20_000): Promise<DeliveredMessage[]> {
    await waitFor(() => this.messages.length >= count, {
      timeoutMs,
      description: `${this.node} to receive ${count} messages (has ${this.messages.length})`,
    });
    return this.messages;
  }

  close(): void {
    this.socket.close();
  }
}
