import { DiscardPolicy, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { queueNames } from '@lib/contracts';

import type { StreamDeclaration } from './streams.js';

const DAY_MS = 24 * 3600 * 1000;
const DEAD_LETTER_MAX_AGE_MS = 30 * DAY_MS;
/** Lease records outlive the longest visibility by this much before the bucket forgets them. */
const LEASE_GRACE_MS = 10 * 60 * 1000;

/** The settings of the work-queue streams. */
export interface QueueStreamSettings {
  NATS_NAMESPACE: string;
  QUEUE_MAX_BYTES: number;
  STREAM_REPLICAS: number;
  DUPLICATE_WINDOW_MS: number;
  QUEUE_VISIBILITY_MAX_MS: number;
}

/**
 * The streams of the work queue, declared in one place.
 * - queue: work-queue retention (a message leaves when acked, which is how an ack is told from an
 *   unknown id later) and `discard: new`, so a full queue refuses a push (503) instead of dropping
 *   stored messages.
 * - dead letters: limits retention; kept 30 days.
 * - leases: the stream of a JetStream KV bucket holding who popped which delivery. Always one
 *   replica: compare-and-set on replicated buckets is unsafe on nats-server 2.9.x before 2.9.21
 *   (nats-server#4320), and the queue's exactness rests on it. Records (a lease, or the delete marker
 *   of a settled message) expire ten minutes after the longest visibility, which bounds the bucket to
 *   the messages popped in that window.
 */
export function queueStreamDeclarations(settings: QueueStreamSettings): StreamDeclaration[] {
  const names = queueNames(settings.NATS_NAMESPACE);
  const ns = (ms: number): number => ms * 1_000_000;
  const leaseTtlMs = settings.QUEUE_VISIBILITY_MAX_MS + LEASE_GRACE_MS;
  return [
    {
      name: names.stream,
      subjects: [names.subjects],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      discard: DiscardPolicy.New,
      max_bytes: settings.QUEUE_MAX_BYTES,
      num_replicas: settings.STREAM_REPLICAS,
      duplicate_window: ns(settings.DUPLICATE_WINDOW_MS),
    },
    {
      name: names.deadLetterStream,
      subjects: [names.deadLetterSubjects],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: ns(DEAD_LETTER_MAX_AGE_MS),
      num_replicas: settings.STREAM_REPLICAS,
      // two replicas dead-lettering the same delivery file it once
      duplicate_window: ns(settings.DUPLICATE_WINDOW_MS),
    },
    {
      // the configuration @nats-io/kv gives a bucket with history 1 and a TTL
      name: names.leaseStream,
      subjects: [`$KV.${names.leaseBucket}.>`],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.New,
      max_msgs_per_subject: 1,
      max_age: ns(leaseTtlMs),
      duplicate_window: ns(Math.min(leaseTtlMs, 120_000)),
      num_replicas: 1,
      allow_rollup_hdrs: true,
      allow_direct: true,
      deny_delete: true,
      deny_purge: false,
    },
  ];
}
