import { randomUUID } from 'node:crypto';

import { type ReadPacket, ServerNats } from '@nestjs/microservices';
import type { Msg, NatsConnection } from '@nats-io/transport-node';

/** Ids given to requests of plain NATS clients, so their replies are sent without Nest's envelope. */
const PLAIN_ID_PREFIX = 'plain:';

interface OutgoingPacket {
  id?: string;
  response?: unknown;
  err?: unknown;
  isDisposed?: boolean;
}

/**
 * Accepts both Nest's request envelope (`{pattern, data, id}`, sent by `ClientNats`) and a plain JSON
 * body from any NATS client; a plain request with a reply subject is answered (Nest alone would take it
 * for an event). An empty body reads as `{}`; a body that is not JSON as `null`.
 */
class EnvelopeOrPlainDeserializer {
  deserialize(message: Msg, options?: { channel: string; replyTo?: string }): ReadPacket & { id?: string } {
    let body: unknown = {};
    if (message.data.length > 0) {
      try {
        body = message.json();
      } catch {
        body = null;
      }
    }
    const envelope = body as { pattern?: unknown; data?: unknown; id?: string } | null;
    if (envelope && typeof envelope === 'object' && 'pattern' in envelope && 'id' in envelope) {
      return envelope as ReadPacket & { id?: string };
    }
    return {
      pattern: options?.channel,
      data: body,
      id: options?.replyTo ? `${PLAIN_ID_PREFIX}${randomUUID()}` : undefined,
    };
  }
}

/** Answers a plain request with the bare result (or the error body), a Nest client with Nest's envelope. */
class EnvelopeOrPlainSerializer {
  serialize(packet: OutgoingPacket): { data: string } {
    if (packet.id?.startsWith(PLAIN_ID_PREFIX)) {
      return { data: JSON.stringify(packet.err ?? packet.response ?? null) };
    }
    return { data: JSON.stringify(packet) };
  }
}

export interface NamespacedNatsServerOptions {
  servers: string[];
  /** Every `@MessagePattern('x.y')` is served on `<namespace>.x.y`. */
  namespace: string;
  /** Queue group: each request goes to one replica. */
  queue: string;
  name?: string;
  user?: string;
  pass?: string;
  token?: string;
}

/**
 * The `@nestjs/microservices` NATS transport with the deployment's namespace in front of every
 * message pattern, so handlers declare `locks.acquire` and the replicas of one deployment answer
 * `<ns>.locks.acquire` in a queue group. Plain NATS clients can call it with a JSON body and get the
 * bare JSON answer; Nest's `ClientNats` works as usual.
 */
export class NamespacedNatsServer extends ServerNats {
  private readonly namespace: string;
  private readonly queue: string;

  constructor(options: NamespacedNatsServerOptions) {
    const { namespace, queue, ...nats } = options;
    super({
      ...nats,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      serializer: new EnvelopeOrPlainSerializer(),
      deserializer: new EnvelopeOrPlainDeserializer(),
    });
    this.namespace = namespace;
    this.queue = queue;
  }

  override bindEvents(client: NatsConnection): void {
    for (const [pattern, handler] of this.messageHandlers) {
      client.subscribe(`${this.namespace}.${pattern}`, {
        queue: (handler.extras?.queue as string | undefined) ?? this.queue,
        callback: this.getMessageHandler(pattern).bind(this) as (error: Error | null, message: Msg) => void,
      });
    }
  }
}
