import { randomBytes, randomUUID } from 'node:crypto';

import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import type { Subscription } from '@nats-io/transport-node';
import { APP_CONFIG } from '@lib/config';
import {
  ALL_NODES,
  type ChatMessage,
  type ChatMethod,
  chatNames,
  type ChatNames,
  type DeliveredMessage,
  type DeliveryFailure,
} from '@lib/contracts';
import { isConsumerNotFound, NatsClient } from '@lib/messaging';
import { LRUCache } from 'lru-cache';

import type { ChatGatewayConfig } from '../chat-gateway.env.js';
import { ChatMetricsService } from '../metrics/chat-metrics.service.js';
import { PresenceService } from '../presence/presence.service.js';
import { SimulationConfigService } from '../simulation/simulation-config.service.js';
import { OrderedInbox } from './ordered-inbox.js';

/** How the gateway reaches a node's socket. */
export type EmitToNode = (event: string, payload: unknown) => void;

/** What a sender asks for. */
export interface SendRequest {
  from: string;
  to: string;
  method: ChatMethod;
  content: string;
}

export interface SendReceipt {
  msg_id: string;
  seq?: number;
  recipients: string[];
}

/** A node registered on this replica: its socket, its pubsub consumer, its ordering state. */
interface AttachedNode {
  node: string;
  emit: EmitToNode;
  /** Sender side: this registration's id and the next sequence per `to`. */
  epoch: string;
  sequences: Map<string, number>;
  attachedAt: number;
  inbox: OrderedInbox;
  /** Pubsub deliveries in progress to this node, by msg_id. */
  inFlight: Map<string, InFlightDelivery>;
  messages?: ConsumerMessages;
  detached: boolean;
}

interface InFlightDelivery {
  message: ChatMessage;
  arrived: boolean;
  acked: () => void;
  wasAcked: boolean;
  /** Ends the current wait for an ack (acked, or the node left). */
  wake: () => void;
}

/** Ack wait of a node's consumer (above the longest ack timeout); a delivery calls `working()` at each retry. */
const CONSUMER_ACK_WAIT_MS = 30_000;
/** Pubsub deliveries in progress per node, at most (the consumer's max_ack_pending). */
const MAX_IN_FLIGHT_PER_NODE = 2_000;
/** Message ids remembered per replica to drop duplicates and accept late acks. */
const REMEMBERED_IDS = 200_000;

/**
 * Delivers chat messages under the simulated network.
 *
 * - direct (at most once): the sender's replica draws loss and latency once per recipient; a lost
 *   message is counted and forgotten; a surviving one is emitted after the latency, through core NATS
 *   when the recipient is on another replica.
 * - pubsub (at least once): the sender's replica stores one message per recipient in JetStream (subject
 *   `inbox.<node>`); the recipient's replica consumes its node's subject and runs the attempts: each
 *   draws loss and latency, and waits `ack_timeout_ms` for `pubsub_ack`; after `max_retries` + 1
 *   attempts it gives up and the sender gets `delivery_failed`. The JetStream message is acked only
 *   when the subscriber acked, so a node that leaves finds its messages when it comes back.
 *   Each message reaches the app (`message`) once, in per-sender order (`OrderedInbox`).
 */
@Injectable()
export class DeliveryService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(DeliveryService.name);
  private readonly names: ChatNames;
  private readonly nodes = new Map<string, AttachedNode>();
  /** `<node>|<msg_id>` of pubsub messages that reached the app on this replica. */
  private readonly reachedApp = new LRUCache<string, true>({ max: REMEMBERED_IDS });
  /** `<node>|<msg_id>` of pubsub deliveries finished on this replica (late acks are fine). */
  private readonly finished = new LRUCache<string, true>({ max: REMEMBERED_IDS });
  /** Attach/detach of one node run one after the other. */
  private readonly nodeOperations = new Map<string, Promise<unknown>>();
  private subscriptions: Subscription[] = [];

  constructor(
    @Inject(NatsClient) private readonly nats: NatsClient,
    @Inject(APP_CONFIG) private readonly settings: ChatGatewayConfig,
    @Inject(PresenceService) private readonly presence: PresenceService,
    @Inject(SimulationConfigService) private readonly simulation: SimulationConfigService,
    @Inject(ChatMetricsService) private readonly metrics: ChatMetricsService,
  ) {
    this.names = chatNames(settings.NATS_NAMESPACE);
  }

  onApplicationBootstrap(): void {
    const connection = this.nats.connection;
    this.subscriptions = [
      connection.subscribe(this.names.directSubject(this.presence.replica), {
        callback: (error, msg) => {
          if (!error) this.arriveDirect(msg.json<ChatMessage & { recipient: string }>());
        },
      }),
      connection.subscribe(this.names.failures, {
        callback: (error, msg) => {
          if (error) return;
          const failure = msg.json<DeliveryFailure>();
          this.nodes.get(failure.from)?.emit('delivery_failed', failure);
        },
      }),
    ];
    this.presence.onAwayExpired((node) => void this.forgetAwayNode(node));
  }

  async beforeApplicationShutdown(): Promise<void> {
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    await Promise.all([...this.nodes.keys()].map((node) => this.detach(node)));
  }

  isAttached(node: string): boolean {
    return this.nodes.has(node);
  }

  /** Pubsub deliveries waiting for an ack or held back for order, over this replica's nodes. */
  get backlog(): { inFlight: number; heldBack: number } {
    let inFlight = 0;
    let heldBack = 0;
    for (const node of this.nodes.values()) {
      inFlight += node.inFlight.size;
      heldBack += node.inbox.heldBack;
    }
    return { inFlight, heldBack };
  }

  /**
   * Makes `node` a sender and a subscriber on this replica and starts delivering its stored pubsub
   * messages. Returns how many were waiting (messages it missed while away).
   */
  attach(node: string, emit: EmitToNode): Promise<{ pending: number }> {
    return this.serially(node, async () => {
      const attached: AttachedNode = {
        node,
        emit,
        epoch: randomBytes(4).toString('hex'),
        sequences: new Map(),
        attachedAt: Date.now(),
        inbox: new OrderedInbox((message) => this.reachApp(attached, message)),
        inFlight: new Map(),
        detached: false,
      };
      this.nodes.set(node, attached);
      try {
        const pending = await this.startConsumer(attached);
        return { pending };
      } catch (error) {
        this.nodes.delete(node);
        attached.detached = true;
        throw error;
      }
    });
  }

  /**
   * Stops delivering to `node` here. Its consumer is deleted, so what it had not acked stays in the
   * stream, whole, for its next registration (on any replica).
   */
  detach(node: string): Promise<void> {
    return this.serially(node, async () => {
      const attached = this.nodes.get(node);
      if (!attached) return;
      this.nodes.delete(node);
      attached.detached = true;
      for (const delivery of attached.inFlight.values()) delivery.wake();
      attached.messages?.stop();
      await this.deleteConsumer(node);
    });
  }

  /** Accepts a message from a registered sender and starts its delivery; resolves once it is stored (pubsub). */
  async send(request: SendRequest, recipients: string[]): Promise<SendReceipt> {
    const sender = this.nodes.get(request.from);
    if (!sender) throw new Error(`${request.from} is not registered on this replica`);
    const msg_id = randomUUID();
    const base: ChatMessage = {
      msg_id,
      from: request.from,
      to: request.to,
      method: request.method,
      content: request.content,
      sent_at: Date.now(),
    };
    if (request.method === 'direct') {
      for (const recipient of recipients) this.sendDirect(base, recipient);
      return { msg_id, recipients };
    }
    const seq = (sender.sequences.get(request.to) ?? 0) + 1;
    sender.sequences.set(request.to, seq);
    const message: ChatMessage = { ...base, seq, epoch: sender.epoch };
    const body = JSON.stringify(message);
    // the publishes leave in call order on one connection, so each inbox stores a sender's messages in sequence order
    await Promise.all(
      recipients.map((recipient) =>
        this.nats.js.publish(this.names.inboxSubject(recipient), body, { msgID: `${msg_id}:${recipient}` }),
      ),
    );
    this.metrics.count('pubsub', 'sent', recipients.length);
    return { msg_id, seq, recipients };
  }

  /** The subscriber `node` acknowledges `msg_id`; false when this replica knows nothing of it. */
  acknowledge(node: string, msgId: string): 'acked' | 'late' | 'unknown' {
    const delivery = this.nodes.get(node)?.inFlight.get(msgId);
    if (delivery) {
      delivery.acked();
      return 'acked';
    }
    return this.finished.has(`${node}|${msgId}`) ? 'late' : 'unknown';
  }

  private sendDirect(message: ChatMessage, recipient: string): void {
    this.metrics.count('direct', 'sent');
    const fate = this.simulation.simulator.drawAttempt();
    if (fate.lost) {
      this.metrics.count('direct', 'lost');
      return;
    }
    const forward = (): void => {
      const replica = this.presence.whereIs(recipient);
      if (replica === this.presence.replica) this.arriveDirect({ ...message, recipient });
      else if (replica !== undefined && this.nats.isConnected)
        this.nats.connection.publish(
          this.names.directSubject(replica),
          JSON.stringify({ ...message, recipient }),
        );
      else this.metrics.count('direct', 'lost');
    };
    if (fate.latencyMs > 0) setTimeout(forward, fate.latencyMs);
    else forward();
  }

  private arriveDirect(message: ChatMessage & { recipient: string }): void {
    const target = this.nodes.get(message.recipient);
    if (!target) {
      this.metrics.count('direct', 'lost');
      return;
    }
    const latency_ms = Date.now() - message.sent_at;
    this.metrics.recordDelivery('direct', latency_ms);
    const delivered: DeliveredMessage = { ...message, latency_ms };
    target.emit('message', delivered);
  }

  private async startConsumer(attached: AttachedNode): Promise<number> {
    const durable = this.names.inboxConsumer(attached.node);
    // nobody else holds the node now: a consumer left by a crashed replica would keep its unacked
    // messages out of reach until their ack wait ran out, so start from a fresh one
    await this.deleteConsumer(attached.node);
    const info = await this.nats.jsm.consumers.add(this.names.stream, {
      durable_name: durable,
      filter_subject: this.names.inboxSubject(attached.node),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: CONSUMER_ACK_WAIT_MS * 1_000_000,
      max_ack_pending: MAX_IN_FLIGHT_PER_NODE,
      max_deliver: -1,
    });
    const consumer = await this.nats.js.consumers.get(this.names.stream, durable);
    const messages = await consumer.consume({ max_messages: 256 });
    attached.messages = messages;
    void (async () => {
      for await (const jsMsg of messages) {
        if (attached.detached) break;
        void this.deliverPubsub(attached, jsMsg).catch((error: unknown) =>
          this.logger.error(`delivery to ${attached.node} failed: ${String(error)}`),
        );
      }
    })().catch((error: unknown) => {
      if (!attached.detached) this.logger.error(`consumer of ${attached.node} ended: ${String(error)}`);
    });
    return info.num_pending;
  }

  private async deliverPubsub(attached: AttachedNode, jsMsg: JsMsg): Promise<void> {
    const message = jsMsg.json<ChatMessage>();
    const key = `${attached.node}|${message.msg_id}`;
    if (this.finished.has(key)) {
      jsMsg.ack();
      return;
    }
    attached.inbox.expect(message);
    const delivery: InFlightDelivery = {
      message,
      arrived: this.reachedApp.has(key),
      wasAcked: false,
      acked: () => {
        delivery.wasAcked = true;
        delivery.wake();
      },
      wake: () => undefined,
    };
    attached.inFlight.set(message.msg_id, delivery);
    const recovered = message.sent_at < attached.attachedAt;
    let attempt = 0;
    try {
      while (!delivery.wasAcked && !attached.detached) {
        const config = this.simulation.current;
        if (attempt > config.max_retries) break;
        attempt += 1;
        if (attempt > 1) {
          this.metrics.count('pubsub', 'retries');
          // the consumer's ack wait started at this delivery and outlasts one attempt: only a retry
          // needs more time (one NATS message less per delivery)
          jsMsg.working();
        }
        const fate = this.simulation.simulator.drawAttempt();
        if (!fate.lost) {
          const thisAttempt = attempt;
          const arrive = (): void => this.arrivePubsub(attached, delivery, thisAttempt, recovered);
          if (fate.latencyMs > 0) setTimeout(arrive, fate.latencyMs);
          else arrive();
        }
        if (delivery.wasAcked) break;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, config.ack_timeout_ms);
          delivery.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    } finally {
      attached.inFlight.delete(message.msg_id);
    }
    if (attached.detached && !delivery.wasAcked) return; // stays in the stream for the next registration
    this.finished.set(key, true);
    if (delivery.wasAcked) {
      jsMsg.ack();
      return;
    }
    jsMsg.term();
    this.metrics.count('pubsub', 'failed');
    if (!delivery.arrived) {
      this.metrics.count('pubsub', 'lost');
      attached.inbox.giveUp(message);
    }
    const failure: DeliveryFailure = {
      msg_id: message.msg_id,
      from: message.from,
      to: message.to,
      recipient: attached.node,
      seq: message.seq ?? 0,
      attempts: attempt,
      reason: 'ack_timeout',
    };
    this.nats.connection.publish(this.names.failures, JSON.stringify(failure));
  }

  private arrivePubsub(
    attached: AttachedNode,
    delivery: InFlightDelivery,
    attempt: number,
    recovered: boolean,
  ): void {
    if (attached.detached) return;
    const { message } = delivery;
    attached.emit('pubsub_message', { ...message, attempt, ...(recovered ? { recovered } : {}) });
    if (delivery.arrived) {
      this.metrics.count('pubsub', 'duplicates');
      return;
    }
    delivery.arrived = true;
    this.reachedApp.set(`${attached.node}|${message.msg_id}`, true);
    attached.inbox.offer({ ...message, attempt, ...(recovered ? { recovered } : {}) });
  }

  private reachApp(attached: AttachedNode, message: ChatMessage): void {
    if (attached.detached) return;
    const latency_ms = Date.now() - message.sent_at;
    this.metrics.recordDelivery('pubsub', latency_ms);
    const delivered: DeliveredMessage = { ...message, recipient: attached.node, latency_ms };
    attached.emit('message', delivered);
  }

  /** The recovery window of a departed node ended: its stored messages are dropped (counted lost). */
  private async forgetAwayNode(node: string): Promise<void> {
    try {
      const purged = await this.nats.jsm.streams.purge(this.names.stream, {
        filter: this.names.inboxSubject(node),
      });
      if (purged.purged > 0) {
        this.metrics.count('pubsub', 'lost', purged.purged);
        this.logger.log(`${node} did not come back: dropped ${purged.purged} stored messages`);
      }
    } catch (error) {
      this.logger.warn(`could not drop the stored messages of ${node}: ${String(error)}`);
    }
  }

  private async deleteConsumer(node: string): Promise<void> {
    try {
      await this.nats.jsm.consumers.delete(this.names.stream, this.names.inboxConsumer(node));
    } catch (error) {
      if (!isConsumerNotFound(error)) throw error;
    }
  }

  private serially<T>(node: string, operation: () => Promise<T>): Promise<T> {
    const previous = this.nodeOperations.get(node) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(operation);
    this.nodeOperations.set(node, next);
    void next
      .finally(() => {
        if (this.nodeOperations.get(node) === next) this.nodeOperations.delete(node);
      })
      .catch(() => undefined);
    return next;
  }

  /** The recipients of a message from `from` to `to`: the node itself, or every other known node for `*`. */
  recipientsOf(from: string, to: string): string[] {
    if (to !== ALL_NODES) return [to];
    const known = new Set([...this.presence.nodes().map((n) => n.node), ...this.presence.awayNodes()]);
    known.delete(from);
    return [...known].sort();
  }
}
