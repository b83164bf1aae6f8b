/**
 * The contract of the chat gateway: its simulation config, the NATS names its replicas share, and the
 * payloads of the Socket.IO events (kept compatible with the seed's event names).
 *
 * Delivery methods:
 * - `direct`: at most once. One attempt, simulated loss and latency, no retry, no notice of loss.
 * - `pubsub`: at least once. Stored in JetStream until every subscriber acked; a missing ack within
 *   `ack_timeout_ms` is retried up to `max_retries` times, then the sender gets `delivery_failed`.
 *   The gateway drops duplicates and hands messages to the app in per-sender order.
 */
export const CHAT_METHODS = ['direct', 'pubsub'] as const;
export type ChatMethod = (typeof CHAT_METHODS)[number];

/** The simulated network, shared by every replica. */
export interface ChatConfig {
  /** Percentage (0–100) of delivery attempts dropped, per recipient. */
  loss_rate: number;
  latency_min_ms: number;
  latency_max_ms: number;
  /** Extra attempts of a pubsub delivery after the first. */
  max_retries: number;
  /** How long a pubsub attempt waits for the subscriber's ack before the next one. */
  ack_timeout_ms: number;
  /** Seed of the loss/latency random generator (reset at every change); null: not reproducible. */
  seed: number | null;
}

export const DEFAULT_CHAT_CONFIG: ChatConfig = {
  loss_rate: 10,
  latency_min_ms: 50,
  latency_max_ms: 250,
  max_retries: 2,
  ack_timeout_ms: 600,
  seed: null,
};

/** Accepted range of each numeric field; values outside are refused, never clamped. */
export const CHAT_CONFIG_LIMITS = {
  loss_rate: { min: 0, max: 100, integer: false },
  latency_min_ms: { min: 0, max: 10_000, integer: true },
  latency_max_ms: { min: 0, max: 10_000, integer: true },
  max_retries: { min: 0, max: 10, integer: true },
  ack_timeout_ms: { min: 100, max: 10_000, integer: true },
  seed: { min: 0, max: 4_294_967_295, integer: true },
} as const satisfies Record<keyof ChatConfig, { min: number; max: number; integer: boolean }>;

/** Node names are subject tokens: letters, digits, `_` and `-` only. */
export const NODE_NAME_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;

/** `to` of a pubsub message meaning every other registered node (the shared topic). */
export const ALL_NODES = '*';

/** Error codes of the gateway's socket acknowledgements. */
export const ChatErrorCode = {
  ValidationFailed: 'VALIDATION_FAILED',
  InvalidConfig: 'INVALID_CONFIG',
  BadMethod: 'BAD_METHOD',
  UnknownNode: 'UNKNOWN_NODE',
  NotRegistered: 'NOT_REGISTERED',
  NodeTaken: 'NODE_TAKEN',
  UnknownMessage: 'UNKNOWN_MESSAGE',
  Unavailable: 'UNAVAILABLE',
} as const;
export type ChatErrorCode = (typeof ChatErrorCode)[keyof typeof ChatErrorCode];

/** What every acknowledgement callback receives. */
export type ChatAck<T extends object = Record<string, unknown>> =
  ({ ok: true } & T) | { ok: false; error: { code: ChatErrorCode; message: string; field?: string } };

/** A chat message as the app sees it (`message`) and as a subscriber gets each attempt (`pubsub_message`). */
export interface ChatMessage {
  msg_id: string;
  from: string;
  /** The recipient node, or `*` for the shared topic. */
  to: string;
  method: ChatMethod;
  content: string;
  /** Sender's wall clock when the gateway accepted the message (ms since the epoch). */
  sent_at: number;
  /** Per sender and `to`, 1, 2, 3 …; pubsub only. */
  seq?: number;
  /** The sender's registration this sequence belongs to; pubsub only. */
  epoch?: string;
  /** Delivery attempt, from 1; pubsub only. */
  attempt?: number;
  /** True when delivered from the stream after the recipient came back (recovery). */
  recovered?: boolean;
}

/** `message`: the app-level delivery, once per message, with its end-to-end latency. */
export interface DeliveredMessage extends ChatMessage {
  recipient: string;
  latency_ms: number;
}

/** `delivery_failed`: a pubsub message a subscriber never acked in `max_retries` + 1 attempts. */
export interface DeliveryFailure {
  msg_id: string;
  from: string;
  to: string;
  recipient: string;
  seq: number;
  attempts: number;
  reason: 'ack_timeout' | 'recipient_gone';
}

/** Counters and latency of one method, over every live replica. */
export interface MethodMetrics {
  sent: number;
  delivered: number;
  lost: number;
  retries: number;
  duplicates: number;
  failed: number;
  avg_latency_ms: number;
  p50_latency_ms: number;
  p99_latency_ms: number;
  max_latency_ms: number;
  /** Deliveries per second over the last push interval. */
  throughput: number;
}

/** `metrics_update`, pushed every 500 ms. */
export interface ChatMetrics {
  direct: MethodMetrics;
  pubsub: MethodMetrics;
  replicas: number;
  at: number;
}

/** A registered node and where it lives. */
export interface PresentNode {
  node: string;
  replica: string;
  joined_at: number;
}

/** `presence`: the registered nodes over every replica, and what changed. */
export interface PresenceUpdate {
  nodes: PresentNode[];
  joined: string[];
  left: string[];
  /** Nodes gone for less than the recovery window: pubsub messages for them are kept. */
  away: string[];
}

/** The names the gateway's replicas share on NATS, under the deployment's namespace. */
export interface ChatNames {
  stream: string;
  configBucket: string;
  inboxSubject(node: string): string;
  inboxSubjects: string;
  inboxConsumer(node: string): string;
  directSubject(replica: string): string;
  presence: string;
  presenceHello: string;
  metrics: string;
  metricsReset: string;
  failures: string;
}

export function chatNames(namespace: string): ChatNames {
  const upper = namespace.toUpperCase();
  return {
    stream: `${upper}_CHAT`,
    configBucket: `${upper}_CHAT_CONFIG`,
    inboxSubject: (node) => `${namespace}.chat.inbox.${node}`,
    inboxSubjects: `${namespace}.chat.inbox.*`,
    inboxConsumer: (node) => `chat-node-${node}`,
    directSubject: (replica) => `${namespace}.chat.direct.${replica}`,
    presence: `${namespace}.chat.presence`,
    presenceHello: `${namespace}.chat.presence.hello`,
    metrics: `${namespace}.chat.metrics`,
    metricsReset: `${namespace}.chat.metrics.reset`,
    failures: `${namespace}.chat.failures`,
  };
}
