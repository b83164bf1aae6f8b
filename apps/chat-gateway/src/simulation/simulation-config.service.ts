import { setTimeout as delay } from 'node:timers/promises';

import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Kvm, type KV } from '@nats-io/kv';
import { APP_CONFIG } from '@lib/config';
import { type ChatConfig, ChatErrorCode, chatNames, DEFAULT_CHAT_CONFIG } from '@lib/contracts';
import { NatsClient } from '@lib/messaging';

import type { ChatGatewayConfig } from '../chat-gateway.env.js';
import { ChatRequestError, InvalidConfigError } from '../chat/chat.errors.js';
import { NetworkSimulator } from './network-simulator.js';
import { mergeChatConfig } from './simulation-config.js';

const KEY = 'config';
const CAS_ATTEMPTS = 10;

/**
 * The simulation config shared by every replica: one key in a JetStream KV bucket. A change is a
 * compare-and-set on the key's revision (so two concurrent partial updates do not lose each other's
 * fields); every replica watches the key and applies what it sees, which is how a change reaches every
 * client on every replica. The bucket is R1 by default; see the product brief about R3 CAS on 2.9.
 */
@Injectable()
export class SimulationConfigService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(SimulationConfigService.name);
  readonly simulator = new NetworkSimulator(DEFAULT_CHAT_CONFIG);
  private kv?: KV;
  private revision = 0;
  private watcher?: { stop(): void };
  private readonly listeners: ((config: ChatConfig) => void)[] = [];

  constructor(
    @Inject(NatsClient) private readonly nats: NatsClient,
    @Inject(APP_CONFIG) private readonly settings: ChatGatewayConfig,
  ) {}

  async onModuleInit(): Promise<void> {
    const names = chatNames(this.settings.NATS_NAMESPACE);
    this.kv = await new Kvm(this.nats.js).create(names.configBucket, {
      history: 1,
      replicas: this.settings.CHAT_STREAM_REPLICAS,
    });
    try {
      await this.kv.create(KEY, JSON.stringify(DEFAULT_CHAT_CONFIG));
    } catch {
      // another replica (or an earlier run) wrote it first: the watch below reads it
    }
    const watch = await this.kv.watch({ key: KEY });
    this.watcher = watch;
    const first = await this.kv.get(KEY);
    if (first?.value && first.value.length > 0) this.apply(first.json<ChatConfig>(), first.revision);
    void (async () => {
      for await (const entry of watch) {
        if (entry.operation !== 'PUT' || entry.value.length === 0) continue;
        this.apply(entry.json<ChatConfig>(), entry.revision);
      }
    })().catch((error: unknown) => this.logger.error(`config watch ended: ${String(error)}`));
  }

  onApplicationShutdown(): void {
    this.watcher?.stop();
  }

  get current(): ChatConfig {
    return this.simulator.current;
  }

  /** Calls `listener` with every config this replica applies (its own changes and the others'). */
  onChange(listener: (config: ChatConfig) => void): void {
    this.listeners.push(listener);
  }

  /** Validates `update` against the stored config and stores the merge; refuses with every bad field. */
  async update(update: unknown): Promise<ChatConfig> {
    const kv = this.requireKv();
    for (let attempt = 1; attempt <= CAS_ATTEMPTS; attempt++) {
      const entry = await kv.get(KEY);
      const stored = entry?.value?.length ? entry.json<ChatConfig>() : DEFAULT_CHAT_CONFIG;
      const { config, problems } = mergeChatConfig(stored, update);
      if (problems.length > 0) throw new InvalidConfigError(problems);
      try {
        const revision = entry
          ? await kv.update(KEY, JSON.stringify(config), entry.revision)
          : await kv.create(KEY, JSON.stringify(config));
        this.apply(config, revision);
        return config;
      } catch (error) {
        if (!/wrong last sequence|key exists/i.test(String(error))) throw error;
        await delay(attempt * 5);
      }
    }
    throw new ChatRequestError(ChatErrorCode.Unavailable, 'config kept changing under this update; retry');
  }

  /** Applies each revision once, whether this replica wrote it or the watch brought it. */
  private apply(config: ChatConfig, revision: number): void {
    if (revision <= this.revision) return;
    this.revision = revision;
    this.simulator.apply(config);
    for (const listener of this.listeners) listener(config);
  }

  private requireKv(): KV {
    if (!this.kv) throw new ChatRequestError(ChatErrorCode.Unavailable, 'config store not ready');
    return this.kv;
  }
}
