import { type ChatConfig, seededRandom } from '@lib/contracts';

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
    this.random = config.seed === null ? Math.random : seededRandom(config.seed);
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
