import { randomBytes } from 'node:crypto';

import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import type { Subscription } from '@nats-io/transport-node';
import { APP_CONFIG } from '@lib/config';
import { chatNames, type ChatNames, type PresenceUpdate, type PresentNode } from '@lib/contracts';
import { NatsClient } from '@lib/messaging';

import type { ChatGatewayConfig } from '../chat-gateway.env.js';

/** What a replica tells the others about its nodes. */
interface Announcement {
  replica: string;
  nodes: PresentNode[];
  departed: { node: string; left_at: number }[];
  /** True when the replica is shutting down: forget it at once. */
  leaving?: boolean;
}

/** A replica is presumed dead after missing this many announcements. */
const MISSED_ANNOUNCEMENTS = 3.5;

/**
 * Which nodes are registered, over every replica. Each replica announces its own nodes on core NATS
 * at every change and every `CHAT_PRESENCE_INTERVAL_MS`; each keeps the latest announcement of every
 * live replica and derives the same view. A node that leaves is "away" for `CHAT_RECOVERY_WINDOW_MS`:
 * pubsub messages for it are kept until it comes back or the window ends.
 */
@Injectable()
export class PresenceService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(PresenceService.name);
  /** This process's id among the replicas (new at every start). */
  readonly replica = randomBytes(6).toString('hex');
  private readonly names: ChatNames;
  private readonly local = new Map<string, PresentNode>();
  private readonly localDeparted = new Map<string, number>();
  private readonly remote = new Map<string, { announcement: Announcement; seenAt: number }>();
  private lastView = new Set<string>();
  private readonly listeners: ((update: PresenceUpdate) => void)[] = [];
  private readonly expiryListeners: ((node: string) => void)[] = [];
  private subscriptions: Subscription[] = [];
  private timer?: NodeJS.Timeout;

  constructor(
    @Inject(NatsClient) private readonly nats: NatsClient,
    @Inject(APP_CONFIG) private readonly settings: ChatGatewayConfig,
  ) {
    this.names = chatNames(settings.NATS_NAMESPACE);
  }

  onApplicationBootstrap(): void {
    const connection = this.nats.connection;
    this.subscriptions = [
      connection.subscribe(this.names.presence, {
        callback: (error, msg) => {
          if (error) return;
          this.receive(msg.json<Announcement>());
        },
      }),
      connection.subscribe(this.names.presenceHello, { callback: () => this.announce() }),
    ];
    connection.publish(this.names.presenceHello);
    this.announce();
    this.timer = setInterval(() => this.tick(), this.settings.CHAT_PRESENCE_INTERVAL_MS);
  }

  beforeApplicationShutdown(): void {
    clearInterval(this.timer);
    if (this.nats.isConnected) this.announce(true);
    for (const subscription of this.subscriptions) subscription.unsubscribe();
  }

  onChange(listener: (update: PresenceUpdate) => void): void {
    this.listeners.push(listener);
  }

  /** Called when a node that left this replica stayed away for the whole recovery window. */
  onAwayExpired(listener: (node: string) => void): void {
    this.expiryListeners.push(listener);
  }

  /** The replica holding `node` now, or undefined. */
  whereIs(node: string): string | undefined {
    if (this.local.has(node)) return this.replica;
    for (const [replica, { announcement }] of this.remote) {
      if (announcement.nodes.some((n) => n.node === node)) return replica;
    }
    return undefined;
  }

  isAway(node: string): boolean {
    return this.whereIs(node) === undefined && this.awayNodes().includes(node);
  }

  /** Every registered node, sorted by name. */
  nodes(): PresentNode[] {
    const all = new Map<string, PresentNode>();
    for (const { announcement } of this.remote.values()) {
      for (const node of announcement.nodes) all.set(node.node, node);
    }
    for (const node of this.local.values()) all.set(node.node, node);
    return [...all.values()].sort((a, b) => a.node.localeCompare(b.node));
  }

  awayNodes(): string[] {
    const now = Date.now();
    const away = new Set<string>();
    const consider = (node: string, leftAt: number): void => {
      if (now - leftAt < this.settings.CHAT_RECOVERY_WINDOW_MS) away.add(node);
    };
    for (const [node, leftAt] of this.localDeparted) consider(node, leftAt);
    for (const { announcement } of this.remote.values()) {
      for (const d of announcement.departed) consider(d.node, d.left_at);
    }
    const present = new Set(this.nodes().map((n) => n.node));
    return [...away].filter((node) => !present.has(node)).sort();
  }

  join(node: string): PresentNode {
    const entry = { node, replica: this.replica, joined_at: Date.now() };
    this.local.set(node, entry);
    this.localDeparted.delete(node);
    this.announce();
    return entry;
  }

  leave(node: string): void {
    if (!this.local.delete(node)) return;
    this.localDeparted.set(node, Date.now());
    this.announce();
  }

  view(): PresenceUpdate {
    return { nodes: this.nodes(), joined: [], left: [], away: this.awayNodes() };
  }

  private receive(announcement: Announcement): void {
    if (announcement.replica === this.replica) return;
    if (announcement.leaving) this.remote.delete(announcement.replica);
    else this.remote.set(announcement.replica, { announcement, seenAt: Date.now() });
    this.recompute();
  }

  private tick(): void {
    const deadline = Date.now() - this.settings.CHAT_PRESENCE_INTERVAL_MS * MISSED_ANNOUNCEMENTS;
    for (const [replica, { seenAt }] of this.remote) {
      if (seenAt < deadline) {
        this.logger.warn(`replica ${replica} stopped announcing: its nodes are gone`);
        this.remote.delete(replica);
      }
    }
    const now = Date.now();
    for (const [node, leftAt] of this.localDeparted) {
      if (now - leftAt < this.settings.CHAT_RECOVERY_WINDOW_MS) continue;
      this.localDeparted.delete(node);
      if (this.whereIs(node) === undefined) for (const listener of this.expiryListeners) listener(node);
    }
    this.announce();
  }

  private announce(leaving = false): void {
    const announcement: Announcement = {
      replica: this.replica,
      nodes: [...this.local.values()],
      departed: [...this.localDeparted].map(([node, left_at]) => ({ node, left_at })),
      ...(leaving ? { leaving: true } : {}),
    };
    if (this.nats.isConnected)
      this.nats.connection.publish(this.names.presence, JSON.stringify(announcement));
    this.recompute();
  }

  private recompute(): void {
    const view = new Set(this.nodes().map((n) => n.node));
    const joined = [...view].filter((n) => !this.lastView.has(n));
    const left = [...this.lastView].filter((n) => !view.has(n));
    this.lastView = view;
    if (joined.length === 0 && left.length === 0) return;
    const update: PresenceUpdate = { nodes: this.nodes(), joined, left, away: this.awayNodes() };
    for (const listener of this.listeners) listener(update);
  }
}
