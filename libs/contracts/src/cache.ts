/**
 * The wire contract of the coherent cache's write-invalidate protocol (core NATS, not JetStream:
 * an invalidation is worth nothing once its write has answered, so nothing is stored).
 *
 * A writer publishes one `CacheInvalidation` per committed write on `invalidations`, with a reply
 * subject of its own; every replica that receives it drops its copy of the key and answers with a
 * `CacheInvalidationAck`. Sequence numbers are per sender process and increase by one per
 * invalidation, so a receiver that sees a gap knows it missed one.
 */
export interface CacheInvalidation {
  /** The sending replica (a process id, new at every start). */
  replica: string;
  /** The sender's invalidation counter: 1, 2, 3 … without gaps. */
  sequence: number;
  key: string;
  /** Version the write committed; copies older than this are stale. */
  version: number;
  /** Sender's wall clock at publish (ms since the epoch), for propagation metrics only. */
  sent_at: number;
}

/** A replica's answer to an invalidation: it has dropped its copy (and marked fills in flight). */
export interface CacheInvalidationAck {
  replica: string;
  /** The `sequence` of the acknowledged invalidation. */
  sequence: number;
}

/** The subjects of the cache protocol, derived from the deployment's namespace like every other name. */
export interface CacheSubjects {
  invalidations: string;
  /** Where a replica collects the acknowledgements of its own invalidations. */
  acks(replica: string): string;
}

export function cacheSubjects(namespace: string): CacheSubjects {
  return {
    invalidations: `${namespace}.cache.invalidations`,
    acks: (replica) => `${namespace}.cache.acks.${replica}`,
  };
}
