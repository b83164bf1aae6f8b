import type { ChatConfig } from '@lib/contracts';

/** mulberry32: a small, fast 32-bit generator, good enough for simulated loss and latency. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** The fate of one delivery attempt to one recipient. */
export interface AttemptFate {
  lost: boolean;
  latencyMs: number;
}

/**
 * Draws loss and latency per delivery attempt. With a `seed` the draws restart from it at every
 * config change, so a run against one replica is reproducible.
 */
export class NetworkSimulator {
  private random: () => number = Math.random;
  private config: ChatConfig;

  constructor(config: ChatConfig) {
    this.config = config;
    this.apply(config);
  }

  apply(config: ChatConfig): void {
    this.config = config;
    this.random = config.seed === null ? Math.random : mulberry32(config.seed);
  }

  get current(): ChatConfig {
    return this.config;
  }

  drawAttempt(): AttemptFate {
    const { loss_rate, latency_min_ms, latency_max_ms } = this.config;
    const lost = loss_rate > 0 && this.random() * 100 < loss_rate;
    const span = latency_max_ms - latency_min_ms;
    const latencyMs = latency_min_ms + (span > 0 ? Math.floor(this.random() * (span + 1)) : 0);
    return { lost, latencyMs };
  }
}
