import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import type { Subscription } from '@nats-io/transport-node';
import * as hdr from 'hdr-histogram-js';
import { APP_CONFIG } from '@lib/config';
import {
  CHAT_METHODS,
  type ChatMethod,
  type ChatMetrics,
  chatNames,
  type ChatNames,
  type MethodMetrics,
} from '@lib/contracts';
import { NatsClient } from '@lib/messaging';
import { METRICS_REGISTRY } from '@lib/observability';
import { Counter, Histogram, type Registry } from 'prom-client';

import type { ChatGatewayConfig } from '../chat-gateway.env.js';
import { PresenceService } from '../presence/presence.service.js';

/** The plain counters of one method on one replica. */
export interface MethodCounters {
  sent: number;
  delivered: number;
  lost: number;
  retries: number;
  duplicates: number;
  failed: number;
}

type Outcome = keyof MethodCounters;
const OUTCOMES: Outcome[] = ['sent', 'delivered', 'lost', 'retries', 'duplicates', 'failed'];

/** One replica's share, published every interval. */
interface ReplicaSnapshot {
  replica: string;
  at: number;
  methods: Record<ChatMethod, MethodCounters & { histogram: string; throughput: number }>;
}

/** Another replica's latest snapshot, its histograms decoded once on arrival. */
interface RemoteSnapshot {
  snapshot: ReplicaSnapshot;
  histograms: Record<ChatMethod, hdr.Histogram>;
}

/**
 * Latencies are recorded in microseconds, 3 significant digits. The histograms grow with the largest
 * value recorded (from 1 s) instead of being allocated for 10 minutes up front: encoding, merging and
 * reading percentiles walk every bucket, and a 10-minute histogram made each metrics push block the
 * event loop for ~30 ms.
 */
const HISTOGRAM_OPTIONS = {
  lowestDiscernibleValue: 1,
  highestTrackableValue: 1_000_000,
  numberOfSignificantValueDigits: 3 as const,
  autoResize: true,
};
/** A replica whose snapshot is older than this many intervals no longer counts. */
const STALE_INTERVALS = 4;

function zeroCounters(): MethodCounters {
  return { sent: 0, delivered: 0, lost: 0, retries: 0, duplicates: 0, failed: 0 };
}

/**
 * Delivery metrics per method. Each replica counts what it did (the sender's replica counts sent and
 * direct losses, the recipient's replica deliveries, retries, duplicates and failures) and publishes
 * its counters and latency histogram on NATS every interval; every replica sums the latest snapshot
 * of each live replica, so `metrics_update` is the same wherever a client is connected.
 */
@Injectable()
export class ChatMetricsService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly names: ChatNames;
  private readonly counters: Record<ChatMethod, MethodCounters> = {
    direct: zeroCounters(),
    pubsub: zeroCounters(),
  };
  private readonly histograms: Record<ChatMethod, hdr.Histogram> = {
    direct: hdr.build(HISTOGRAM_OPTIONS),
    pubsub: hdr.build(HISTOGRAM_OPTIONS),
  };
  private readonly previousDelivered: Record<ChatMethod, number> = { direct: 0, pubsub: 0 };
  private previousAt = Date.now();
  private readonly snapshots = new Map<string, RemoteSnapshot>();
  /** Reused to merge this replica's histogram with the others' (a fresh one per read is costly). */
  private readonly merged: Record<ChatMethod, hdr.Histogram> = {
    direct: hdr.build(HISTOGRAM_OPTIONS),
    pubsub: hdr.build(HISTOGRAM_OPTIONS),
  };
  /** The encoded histograms of the last push, reused while nothing new was recorded. */
  private readonly encoded: Record<ChatMethod, { histogram: string; count: number } | undefined> = {
    direct: undefined,
    pubsub: undefined,
  };
  private readonly listeners: ((metrics: ChatMetrics) => void)[] = [];
  private subscriptions: Subscription[] = [];
  private timer?: NodeJS.Timeout;
  private readonly promLatency: Record<ChatMethod, { observe(seconds: number): void }>;

  constructor(
    @Inject(NatsClient) private readonly nats: NatsClient,
    @Inject(APP_CONFIG) private readonly settings: ChatGatewayConfig,
    @Inject(PresenceService) private readonly presence: PresenceService,
    @Inject(METRICS_REGISTRY) registry: Registry,
  ) {
    this.names = chatNames(settings.NATS_NAMESPACE);
    const counters = this.counters;
    new Counter({
      name: 'chat_messages_total',
      help: 'Chat deliveries handled by this replica, per method and outcome (sent, delivered, lost, retries, duplicates, failed)',
      labelNames: ['method', 'outcome'],
      registers: [registry],
      collect() {
        this.reset();
        for (const method of CHAT_METHODS) {
          for (const outcome of OUTCOMES) this.inc({ method, outcome }, counters[method][outcome]);
        }
      },
    });
    const latency = new Histogram({
      name: 'chat_delivery_latency_seconds',
      help: 'From send_message to the message reaching the app, per method (this replica)',
      labelNames: ['method'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    // bound once: looking the labels up on every delivery shows in the profile
    this.promLatency = { direct: latency.labels('direct'), pubsub: latency.labels('pubsub') };
  }

  onApplicationBootstrap(): void {
    const connection = this.nats.connection;
    this.subscriptions = [
      connection.subscribe(this.names.metrics, {
        callback: (error, msg) => {
          if (error) return;
          const snapshot = msg.json<ReplicaSnapshot>();
          if (snapshot.replica === this.presence.replica) return;
          const histograms = {} as RemoteSnapshot['histograms'];
          for (const method of CHAT_METHODS) {
            const encoded = snapshot.methods[method].histogram;
            histograms[method] =
              encoded === '' ? hdr.build(HISTOGRAM_OPTIONS) : hdr.decodeFromCompressedBase64(encoded);
          }
          this.snapshots.set(snapshot.replica, { snapshot, histograms });
        },
      }),
      connection.subscribe(this.names.metricsReset, { callback: () => this.resetLocal() }),
    ];
    this.timer = setInterval(() => this.tick(), this.settings.CHAT_METRICS_INTERVAL_MS);
  }

  beforeApplicationShutdown(): void {
    clearInterval(this.timer);
    for (const subscription of this.subscriptions) subscription.unsubscribe();
  }

  /** Calls `listener` with the aggregated metrics every interval. */
  onUpdate(listener: (metrics: ChatMetrics) => void): void {
    this.listeners.push(listener);
  }

  count(method: ChatMethod, outcome: Outcome, by = 1): void {
    this.counters[method][outcome] += by;
  }

  /** A message reached the app `latencyMs` after it was sent. */
  recordDelivery(method: ChatMethod, latencyMs: number): void {
    this.counters[method].delivered += 1;
    this.histograms[method].recordValue(Math.max(1, Math.round(latencyMs * 1_000)));
    this.promLatency[method].observe(latencyMs / 1_000);
  }

  /** Zeroes the counters of every replica (for a new experiment). */
  resetEverywhere(): void {
    this.resetLocal();
    this.nats.connection.publish(this.names.metricsReset);
  }

  /** The sum over every live replica, as of the latest snapshots. */
  aggregate(): ChatMetrics {
    const own = this.snapshot();
    const remotes = this.liveRemoteSnapshots();
    const live = [own, ...remotes.map((remote) => remote.snapshot)];
    const result = {} as Record<ChatMethod, MethodMetrics>;
    for (const method of CHAT_METHODS) {
      const sum = zeroCounters();
      let throughput = 0;
      for (const snapshot of live) {
        const part = snapshot.methods[method];
        for (const outcome of OUTCOMES) sum[outcome] += part[outcome];
        throughput += part.throughput;
      }
      let histogram = this.histograms[method];
      const others = remotes.filter((remote) => remote.histograms[method].totalCount > 0);
      if (others.length > 0) {
        histogram = this.merged[method];
        histogram.reset();
        histogram.add(this.histograms[method]);
        for (const remote of others) histogram.add(remote.histograms[method]);
      }
      const micros = (value: number): number => Math.round(value) / 1_000;
      result[method] = {
        ...sum,
        avg_latency_ms: histogram.totalCount > 0 ? micros(histogram.mean) : 0,
        p50_latency_ms: histogram.totalCount > 0 ? micros(histogram.getValueAtPercentile(50)) : 0,
        p99_latency_ms: histogram.totalCount > 0 ? micros(histogram.getValueAtPercentile(99)) : 0,
        max_latency_ms: histogram.totalCount > 0 ? micros(histogram.maxValue) : 0,
        throughput: Math.round(throughput * 10) / 10,
      };
    }
    return { ...result, replicas: live.length, at: Date.now() };
  }

  private liveRemoteSnapshots(): RemoteSnapshot[] {
    const oldest = Date.now() - this.settings.CHAT_METRICS_INTERVAL_MS * STALE_INTERVALS;
    for (const [replica, remote] of this.snapshots)
      if (remote.snapshot.at < oldest) this.snapshots.delete(replica);
    return [...this.snapshots.values()];
  }

  private throughputs: Record<ChatMethod, number> = { direct: 0, pubsub: 0 };

  private snapshot(): ReplicaSnapshot {
    const methods = {} as ReplicaSnapshot['methods'];
    for (const method of CHAT_METHODS) {
      methods[method] = {
        ...this.counters[method],
        histogram: '',
        throughput: this.throughputs[method],
      };
    }
    return { replica: this.presence.replica, at: Date.now(), methods };
  }

  private tick(): void {
    const now = Date.now();
    const seconds = Math.max(0.001, (now - this.previousAt) / 1_000);
    for (const method of CHAT_METHODS) {
      const delivered = this.counters[method].delivered;
      this.throughputs[method] = Math.max(0, delivered - this.previousDelivered[method]) / seconds;
      this.previousDelivered[method] = delivered;
    }
    this.previousAt = now;
    const snapshot = this.snapshot();
    for (const method of CHAT_METHODS) {
      const histogram = this.histograms[method];
      let encoded = this.encoded[method];
      if (encoded?.count !== histogram.totalCount) {
        encoded = {
          histogram: histogram.totalCount > 0 ? hdr.encodeIntoCompressedBase64(histogram) : '',
          count: histogram.totalCount,
        };
        this.encoded[method] = encoded;
      }
      snapshot.methods[method].histogram = encoded.histogram;
    }
    if (this.nats.isConnected) this.nats.connection.publish(this.names.metrics, JSON.stringify(snapshot));
    const metrics = this.aggregate();
    for (const listener of this.listeners) listener(metrics);
  }

  private resetLocal(): void {
    for (const method of CHAT_METHODS) {
      this.counters[method] = zeroCounters();
      this.histograms[method].reset();
      this.encoded[method] = undefined;
      this.previousDelivered[method] = 0;
      this.throughputs[method] = 0;
    }
    this.snapshots.clear();
  }
}
