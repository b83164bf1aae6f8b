import { createHash } from 'node:crypto';

/** How strongly `member` wants `partition`: a uniform 48-bit number, the same on every replica. */
function weight(member: string, partition: number): number {
  return createHash('sha256').update(`${member}\0${partition}`).digest().readUIntBE(0, 6);
}

/**
 * Rendezvous (highest-random-weight) assignment: each partition goes to the member with the highest
 * weight for it. Every replica computes the same answer from the same member list, and when a member
 * joins or leaves only the partitions it wins or held move (about 1/N of them), nothing else.
 * Returns the owner of each partition, indexed by partition; empty when there are no members.
 */
export function assignPartitions(members: readonly string[], partitions: number): string[] {
  if (members.length === 0) return [];
  return Array.from({ length: partitions }, (_, partition) => {
    let best = members[0];
    let bestWeight = weight(best, partition);
    for (const member of members.slice(1)) {
      const w = weight(member, partition);
      if (w > bestWeight || (w === bestWeight && member < best)) {
        best = member;
        bestWeight = w;
      }
    }
    return best;
  });
}
