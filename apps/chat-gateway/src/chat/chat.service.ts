import { Inject, Injectable } from '@nestjs/common';
import {
  ALL_NODES,
  CHAT_METHODS,
  type ChatConfig,
  ChatErrorCode,
  type ChatMethod,
  type ChatMetrics,
  NODE_NAME_PATTERN,
  type PresenceUpdate,
} from '@lib/contracts';

import { DeliveryService, type EmitToNode, type SendReceipt } from '../delivery/delivery.service.js';
import { ChatMetricsService } from '../metrics/chat-metrics.service.js';
import { PresenceService } from '../presence/presence.service.js';
import { SimulationConfigService } from '../simulation/simulation-config.service.js';
import { ChatRequestError } from './chat.errors.js';

/** Longest message content, in characters. */
export const MAX_CONTENT_LENGTH = 10_000;

export interface Registration {
  node: string;
  replica: string;
  /** True when the node had left less than the recovery window ago (its stored messages follow). */
  recovered: boolean;
  /** Pubsub messages stored for it when it registered. */
  missed: number;
  config: ChatConfig;
  presence: PresenceUpdate;
}

/** The chat's use cases, one per socket event or route; every refusal is a `ChatRequestError`. */
@Injectable()
export class ChatService {
  /** Nodes between their name check and their presence announcement on this replica. */
  private readonly registering = new Set<string>();

  constructor(
    @Inject(PresenceService) private readonly presence: PresenceService,
    @Inject(DeliveryService) private readonly delivery: DeliveryService,
    @Inject(SimulationConfigService) private readonly simulation: SimulationConfigService,
    @Inject(ChatMetricsService) private readonly metrics: ChatMetricsService,
  ) {}

  async register(payload: unknown, emit: EmitToNode): Promise<Registration> {
    const node = this.nodeName(field(payload, 'node'), 'node');
    if (this.presence.whereIs(node) !== undefined || this.registering.has(node)) {
      throw new ChatRequestError(ChatErrorCode.NodeTaken, `node ${node} is already registered`, 'node');
    }
    const recovered = this.presence.isAway(node);
    this.registering.add(node);
    let pending: number;
    try {
      ({ pending } = await this.delivery.attach(node, emit));
      this.presence.join(node);
    } catch (error) {
      throw new ChatRequestError(ChatErrorCode.Unavailable, `could not register ${node}: ${String(error)}`);
    } finally {
      this.registering.delete(node);
    }
    return {
      node,
      replica: this.presence.replica,
      recovered,
      missed: pending,
      config: this.simulation.current,
      presence: this.presence.view(),
    };
  }

  async unregister(node: string): Promise<void> {
    this.presence.leave(node);
    await this.delivery.detach(node);
  }

  async send(registeredAs: string | undefined, payload: unknown): Promise<SendReceipt> {
    if (registeredAs === undefined) {
      throw new ChatRequestError(ChatErrorCode.NotRegistered, 'register a node before sending');
    }
    const from = field(payload, 'from') ?? registeredAs;
    if (from !== registeredAs) {
      throw new ChatRequestError(
        ChatErrorCode.NotRegistered,
        `this connection is registered as ${registeredAs}, not ${JSON.stringify(from)}`,
        'from',
      );
    }
    const method = field(payload, 'method') ?? 'direct';
    if (typeof method !== 'string' || !(CHAT_METHODS as readonly string[]).includes(method)) {
      throw new ChatRequestError(
        ChatErrorCode.BadMethod,
        `method must be one of ${CHAT_METHODS.join(', ')}, got ${JSON.stringify(method)}`,
        'method',
      );
    }
    const to = field(payload, 'to');
    const target = to === ALL_NODES ? ALL_NODES : this.nodeName(to, 'to');
    if (target === registeredAs) {
      throw new ChatRequestError(ChatErrorCode.ValidationFailed, 'a node cannot send to itself', 'to');
    }
    if (
      target !== ALL_NODES &&
      this.presence.whereIs(target) === undefined &&
      !this.presence.isAway(target)
    ) {
      throw new ChatRequestError(ChatErrorCode.UnknownNode, `node ${target} is not registered`, 'to');
    }
    const content = field(payload, 'content');
    if (typeof content !== 'string' || content.length === 0 || content.length > MAX_CONTENT_LENGTH) {
      throw new ChatRequestError(
        ChatErrorCode.ValidationFailed,
        `content must be a string of 1 to ${MAX_CONTENT_LENGTH} characters`,
        'content',
      );
    }
    const recipients = this.delivery.recipientsOf(registeredAs, target);
    try {
      return await this.delivery.send(
        { from: registeredAs, to: target, method: method as ChatMethod, content },
        recipients,
      );
    } catch (error) {
      throw new ChatRequestError(ChatErrorCode.Unavailable, `message not stored: ${String(error)}`);
    }
  }

  acknowledge(registeredAs: string | undefined, payload: unknown): { late: boolean } {
    if (registeredAs === undefined) {
      throw new ChatRequestError(ChatErrorCode.NotRegistered, 'register a node before acking');
    }
    const node = field(payload, 'node') ?? registeredAs;
    if (node !== registeredAs) {
      throw new ChatRequestError(
        ChatErrorCode.NotRegistered,
        `this connection is registered as ${registeredAs}, not ${JSON.stringify(node)}`,
        'node',
      );
    }
    const msgId = field(payload, 'msg_id');
    if (typeof msgId !== 'string' || msgId.length === 0) {
      throw new ChatRequestError(ChatErrorCode.ValidationFailed, 'msg_id must be a message id', 'msg_id');
    }
    const outcome = this.delivery.acknowledge(registeredAs, msgId);
    if (outcome === 'unknown') {
      throw new ChatRequestError(
        ChatErrorCode.UnknownMessage,
        `no pubsub delivery of ${msgId} to ${registeredAs} is known here`,
        'msg_id',
      );
    }
    return { late: outcome === 'late' };
  }

  updateConfig(payload: unknown): Promise<ChatConfig> {
    return this.simulation.update(payload);
  }

  config(): ChatConfig {
    return this.simulation.current;
  }

  presenceView(): PresenceUpdate {
    return this.presence.view();
  }

  metricsNow(): ChatMetrics {
    return this.metrics.aggregate();
  }

  resetMetrics(): void {
    this.metrics.resetEverywhere();
  }

  private nodeName(value: unknown, name: string): string {
    if (typeof value !== 'string' || !NODE_NAME_PATTERN.test(value)) {
      throw new ChatRequestError(
        ChatErrorCode.ValidationFailed,
        `${name} must be 1 to 32 letters, digits, _ or -`,
        name,
      );
    }
    return value;
  }
}

function field(payload: unknown, name: string): unknown {
  if (typeof payload !== 'object' || payload === null) return undefined;
  return (payload as Record<string, unknown>)[name];
}
