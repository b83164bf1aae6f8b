import { describe, expect, it } from '@jest/globals';
import { DEFAULT_CHAT_CONFIG } from '@lib/contracts';

import { NetworkSimulator } from './network-simulator.js';
import { mergeChatConfig } from './simulation-config.js';

describe(mergeChatConfig.name, () => {
  it('accepts an in-range partial update', () => {
    expect(mergeChatConfig(DEFAULT_CHAT_CONFIG, { loss_rate: 50, seed: 7 })).toEqual({
      config: { ...DEFAULT_CHAT_CONFIG, loss_rate: 50, seed: 7 },
      problems: [],
    });
  });

  it('refuses out-of-range values naming the field, and keeps the current config', () => {
    const { config, problems } = mergeChatConfig(DEFAULT_CHAT_CONFIG, {
      loss_rate: 100.5,
      ack_timeout_ms: 99,
    });
    expect(config).toBe(DEFAULT_CHAT_CONFIG);
    expect(problems.map((p) => p.field)).toEqual(['loss_rate', 'ack_timeout_ms']);
  });

  it('refuses a maximum latency below the minimum', () => {
    const { problems } = mergeChatConfig(DEFAULT_CHAT_CONFIG, { latency_min_ms: 300 });
    expect(problems).toEqual([expect.objectContaining({ field: 'latency_max_ms' })]);
  });
});

describe(NetworkSimulator.name, () => {
  it('draws the same loss and latency again from the same seed', () => {
    const config = { ...DEFAULT_CHAT_CONFIG, loss_rate: 30, seed: 42 };
    const draw = (): string => {
      const simulator = new NetworkSimulator(config);
      return JSON.stringify(Array.from({ length: 50 }, () => simulator.drawAttempt()));
    };
    expect(draw()).toBe(draw());
  });
});
