/**
 * A script's view of a running chat gateway: its HTTP routes (config, metrics) and Socket.IO nodes
 * that record what the gateway pushes to them and ack pubsub attempts like the dashboard does.
 */
import type {
  ChatAck,
  ChatConfig,
  ChatMessage,
  ChatMetrics,
  DeliveredMessage,
  DeliveryFailure,
} from '@lib/contracts';
import { io, type Socket } from 'socket.io-client';

/** The gateway could not be reached or answered something no chat gateway answers. */
export class GatewayUnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GatewayUnreachableError';
  }
}

const REQUEST_TIMEOUT_MS = 15_000;

/** The gateway's HTTP routes a script needs. */
export class GatewayApi {
  constructor(readonly url: string) {}

  config(): Promise<ChatConfig> {
    return this.call<ChatConfig>('GET', '/chat/config');
  }

  updateConfig(update: Partial<ChatConfig>): Promise<ChatConfig> {
    return this.call<ChatConfig>('PUT', '/chat/config', update);
  }

  metrics(): Promise<ChatMetrics> {
    return this.call<ChatMetrics>('GET', '/chat/metrics');
  }

  async resetMetrics(): Promise<void> {
    await this.call('POST', '/chat/metrics/reset');
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new GatewayUnreachableError(
        `cannot reach the chat gateway at ${this.url} (${cause?.code ?? cause?.message ?? String(error)}); ` +
          'start it (npm start, or node dist/apps/chat-gateway/src/main.js) or pass --url',
      );
    }
    const text = await response.text();
    if (response.status === 404) {
      throw new GatewayUnreachableError(
        `${this.url}${path} answered 404: is ${this.url} a chat gateway? (pass --url)`,
      );
    }
    if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }
}

/**
 * A registered chat node over WebSocket. It records the messages it receives and the failures it is
 * told of, and acks every pubsub attempt at once.
 */
export class ChatSession {
  readonly messages: DeliveredMessage[] = [];
  /** `performance.now()` when each of `messages` arrived. */
  readonly receivedAt: number[] = [];
  readonly failures: DeliveryFailure[] = [];

  private constructor(
    readonly socket: Socket,
    readonly node: string,
  ) {
    socket.on('message', (m: DeliveredMessage) => {
      this.messages.push(m);
      this.receivedAt.push(performance.now());
    });
    socket.on('pubsub_message', (m: ChatMessage) => socket.emit('pubsub_ack', { msg_id: m.msg_id, node }));
    socket.on('delivery_failed', (f: DeliveryFailure) => this.failures.push(f));
  }

  /** Connects to `url` and registers `node`; throws a clear error when either fails. */
  static async open(url: string, node: string): Promise<ChatSession> {
    const socket = io(url, { transports: ['websocket'], reconnection: false, forceNew: true });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no Socket.IO connection within ${REQUEST_TIMEOUT_MS} ms`)),
          REQUEST_TIMEOUT_MS,
        );
        socket.once('connect', () => {
          clearTimeout(timer);
          resolve();
        });
        socket.once('connect_error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
      });
    } catch (error) {
      socket.close();
      throw new GatewayUnreachableError(
        `cannot open a Socket.IO connection to ${url}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    const session = new ChatSession(socket, node);
    const answer = await session.request('register', { node });
    if (!answer.ok) {
      socket.close();
      throw new Error(`register ${node} refused: ${answer.error.code} ${answer.error.message}`);
    }
    return session;
  }

  request<T extends object = Record<string, unknown>>(event: string, payload?: unknown): Promise<ChatAck<T>> {
    return this.socket.timeout(REQUEST_TIMEOUT_MS).emitWithAck(event, payload) as Promise<ChatAck<T>>;
  }

  send(to: string, method: string, content: string): Promise<ChatAck<{ msg_id: string; seq?: number }>> {
    return this.request('send_message', { from: this.node, to, method, content });
  }

  close(): void {
    this.socket.close();
  }
}
