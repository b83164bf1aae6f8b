import { DomainError, ErrorCode } from '@lib/contracts';

/** Codes of the queue's refusals that the shared error codes do not cover. */
export const QueueErrorCode = {
  NotLeaseHolder: 'NOT_LEASE_HOLDER',
  AlreadyAcked: 'ALREADY_ACKED',
} as const;
export type QueueErrorCode = (typeof QueueErrorCode)[keyof typeof QueueErrorCode];

/** A refusal of an ack or nack, with the queue's own code and status. */
export abstract class QueueError extends DomainError {
  abstract override readonly code: QueueErrorCode;
  abstract override readonly status: number;
}

/**
 * 409: the message is in the queue but this consumer does not hold this delivery: it was never popped,
 * was popped by another consumer, was delivered again since (the lease expired and someone popped it),
 * or was nacked.
 */
export class NotLeaseHolderError extends QueueError {
  readonly code = QueueErrorCode.NotLeaseHolder;
  readonly status = 409;
}

/** 410: the message is no longer in the queue: acked, or dead-lettered after its last delivery. */
export class AlreadyAckedError extends QueueError {
  readonly code = QueueErrorCode.AlreadyAcked;
  readonly status = 410;
}

/** 413: a pushed message larger than `QUEUE_MESSAGE_MAX_BYTES` (or than a NATS message can carry). */
export class MessageTooLargeError extends DomainError {
  readonly code = ErrorCode.PayloadTooLarge;
}
