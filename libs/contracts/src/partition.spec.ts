import { describe, expect, it } from '@jest/globals';

import { partitionOf } from './partition.js';

/** `n` distinct topics shaped like real ones. */
function topics(n: number, prefix = 'topic'): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
}

describe(partitionOf.name, () => {
  it('returns the same partition for the same topic and partition count', () => {
    for (const topic of topics(100, 'same')) {
      expect(partitionOf(topic, 16)).toBe(partitionOf(topic, 16));
    }
  });

  it('returns a whole number within [0, n) for every partition count', () => {
    for (const partitions of [1, 2, 3, 7, 16, 1024]) {
      for (const topic of ['', 'a', 'test.topic', ...topics(200, 'range')]) {
        const partition = partitionOf(topic, partitions);
        expect(Number.isInteger(partition)).toBe(true);
        expect(partition).toBeGreaterThanOrEqual(0);
        expect(partition).toBeLessThan(partitions);
      }
    }
  });

  it('maps every topic to partition 0 when there is one partition', () => {
    expect(new Set(topics(50, 'single').map((topic) => partitionOf(topic, 1)))).toEqual(new Set([0]));
  });

  it('spreads 10,000 topics over 16 partitions roughly evenly', () => {
    const counts = new Array<number>(16).fill(0);
    for (const topic of topics(10_000)) counts[partitionOf(topic, 16)] += 1;

    expect(counts.reduce((sum, count) => sum + count, 0)).toBe(10_000);
    for (const count of counts) {
      expect(count).toBeGreaterThanOrEqual(400);
      expect(count).toBeLessThanOrEqual(850);
    }
  });

  it('computes FNV-1a (32 bit): the published test vectors come back unreduced modulo 2^32', () => {
    expect(partitionOf('', 2 ** 32)).toBe(0x811c9dc5);
    expect(partitionOf('a', 2 ** 32)).toBe(0xe40c292c);
    expect(partitionOf('foobar', 2 ** 32)).toBe(0xbf9cf968);
  });

  it('keeps the partitions of known topics across releases', () => {
    // computed once; a change here re-routes live topics and breaks per-topic ordering
    expect(partitionOf('', 16)).toBe(5);
    expect(partitionOf('a', 16)).toBe(12);
    expect(partitionOf('orders', 16)).toBe(12);
    expect(partitionOf('test.topic', 16)).toBe(8);
    expect(partitionOf('load.t0', 16)).toBe(9);
    expect(partitionOf('load.t1', 16)).toBe(6);
    expect(partitionOf('test.topic', 1024)).toBe(696);
    expect(partitionOf('load.t1', 1024)).toBe(854);
  });
});
