import { describe, expect, it } from '@jest/globals';

import { assignPartitions } from './rendezvous.js';

const members = (n: number): string[] => Array.from({ length: n }, (_, i) => `replica-${i + 1}`);

describe(assignPartitions.name, () => {
  it('gives every partition to one of the members, the same whatever the order of the list', () => {
    const owners = assignPartitions(members(3), 16);
    expect(owners).toHaveLength(16);
    for (const owner of owners) expect(members(3)).toContain(owner);
    expect(assignPartitions([...members(3)].reverse(), 16)).toEqual(owners);
  });

  it('gives a lone member everything and no member nothing', () => {
    expect(assignPartitions(['only'], 4)).toEqual(['only', 'only', 'only', 'only']);
    expect(assignPartitions([], 4)).toEqual([]);
  });

  it('moves only the partitions a joining member wins', () => {
    for (let n = 1; n <= 8; n++) {
      const before = assignPartitions(members(n), 256);
      const after = assignPartitions(members(n + 1), 256);
      const newcomer = `replica-${n + 1}`;
      after.forEach((owner, partition) => {
        if (owner !== before[partition]) expect(owner).toBe(newcomer);
      });
      // about 1/(n+1) of them: within a wide band of the expected share
      const moved = after.filter((owner, p) => owner !== before[p]).length;
      expect(moved).toBeGreaterThan((256 / (n + 1)) * 0.6);
      expect(moved).toBeLessThan((256 / (n + 1)) * 1.4);
    }
  });

  it('moves only the partitions of a member that leaves', () => {
    const before = assignPartitions(members(4), 256);
    const after = assignPartitions(
      members(4).filter((m) => m !== 'replica-2'),
      256,
    );
    before.forEach((owner, partition) => {
      if (owner !== 'replica-2') expect(after[partition]).toBe(owner);
      else expect(after[partition]).not.toBe('replica-2');
    });
  });

  it('spreads 16 partitions over 3 members without leaving one idle', () => {
    const counts = new Map<string, number>();
    for (const owner of assignPartitions(members(3), 16)) counts.set(owner, (counts.get(owner) ?? 0) + 1);
    expect(counts.size).toBe(3);
  });
});
