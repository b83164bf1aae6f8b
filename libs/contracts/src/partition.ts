/**
 * Maps a topic to one of `partitions` partitions with FNV-1a (32 bit): stable across processes and
 * releases, so every publisher replica sends a topic's events to the same partition and the
 * aggregator stores them in publish order.
 */
export function partitionOf(topic: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < topic.length; i++) {
    hash ^= topic.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % partitions;
}
