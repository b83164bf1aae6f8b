import { createHash } from 'node:crypto';

import { ValidationFailedError } from '@lib/contracts';

/** What a `message_id` names: one delivery of the message at a stream sequence (0: not delivered yet). */
export interface DeliveryRef {
  sequence: number;
  delivery: number;
  /** Given on the ids pops hand out: enough to ack without reading the lease first. */
  lease?: IssuedLease;
}

/** The lease a pop wrote, as its message id carries it. */
export interface IssuedLease {
  /** The consumer's delivery sequence (a token of the delivery's ack subject). */
  consumerSequence: number;
  /** Revision of the lease record the pop wrote; 0 when it wrote none (a first delivery on the default visibility). */
  revision: number;
  /** Digest binding the fields above to the topic and the consumer the pop served. */
  tag: string;
}

const MESSAGE_ID = /^v1-([1-9]\d{0,15})-(0|[1-9]\d{0,8})(?:-([1-9]\d{0,15})-(0|[1-9]\d{0,15})-([\w-]{16}))?$/;

/**
 * A `message_id` as clients see it: `v1-<sequence>-<delivery>` for a pushed message, and
 * `v1-<sequence>-<delivery>-<consumer sequence>-<lease revision>-<tag>` for a popped delivery. Clients
 * treat it as opaque; the version prefix lets it change. Any replica decodes it: the sequence keys the
 * delivery's lease, and the rest lets an ack compare-and-set that lease without reading it.
 */
export function encodeMessageId({ sequence, delivery, lease }: DeliveryRef): string {
  const base = `v1-${sequence}-${delivery}`;
  return lease ? `${base}-${lease.consumerSequence}-${lease.revision}-${lease.tag}` : base;
}

/** The id of a popped delivery, bound to its topic and consumer. */
export function issueMessageId(
  topic: string,
  consumerId: string,
  delivery: Omit<DeliveryRef, 'lease'>,
  lease: Omit<IssuedLease, 'tag'>,
): string {
  return encodeMessageId({
    ...delivery,
    lease: { ...lease, tag: tagOf(topic, consumerId, delivery, lease) },
  });
}

/**
 * True when `ref` was issued to `consumerId` for `topic` (its tag matches). Not a secret: consumer ids
 * are not credentials; it keeps one consumer's id from settling through another consumer's request.
 */
export function isIssuedTo(
  ref: DeliveryRef,
  topic: string,
  consumerId: string,
): ref is Required<DeliveryRef> {
  return ref.lease !== undefined && ref.lease.tag === tagOf(topic, consumerId, ref, ref.lease);
}

/** Decodes a `message_id`, or throws `ValidationFailedError` (400) naming the field. */
export function decodeMessageId(messageId: string, field = 'message_id'): DeliveryRef {
  const match = MESSAGE_ID.exec(messageId);
  const numbers = match ? [match[1], match[2], match[3] ?? '0', match[4] ?? '0'].map(Number) : [];
  if (!match || !numbers.every((n) => Number.isSafeInteger(n))) {
    throw new ValidationFailedError(
      `${field} "${messageId.slice(0, 80)}" is not a message id of this queue`,
      [{ field, message: 'must be a message_id returned by a pop' }],
    );
  }
  const [sequence, delivery, consumerSequence, revision] = numbers;
  const lease = match[5] === undefined ? undefined : { consumerSequence, revision, tag: match[5] };
  return { sequence, delivery, lease };
}

function tagOf(
  topic: string,
  consumerId: string,
  { sequence, delivery }: Omit<DeliveryRef, 'lease'>,
  { consumerSequence, revision }: Omit<IssuedLease, 'tag'>,
): string {
  return createHash('sha256')
    .update(JSON.stringify([topic, consumerId, sequence, delivery, consumerSequence, revision]))
    .digest('base64url')
    .slice(0, 16);
}
