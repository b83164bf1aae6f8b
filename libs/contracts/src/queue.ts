import { createHash } from 'node:crypto';

import { TOPIC_PATTERN } from './event.js';
import { messagingNames } from './subjects.js';

const TOPIC = new RegExp(TOPIC_PATTERN);

/**
 * Stream, subject, consumer and bucket names of the work queue, derived from the namespace like
 * `messagingNames`. A topic never becomes a raw subject token: its subject token is the base64url of
 * the topic (only `[A-Za-z0-9_-]`, so never a `.`, `*` or `>`), and its consumer is named by a digest.
 */
export interface QueueNames {
  /** Work-queue stream holding every topic's messages until they are acked or dead-lettered. */
  stream: string;
  /** Subjects of `stream`: `<ns>.queue.t.<topic token>`. */
  subjects: string;
  /** Limits-retention stream of messages that reached the delivery limit. */
  deadLetterStream: string;
  deadLetterSubjects: string;
  /** JetStream KV bucket (R1) of pop leases, keyed by stream sequence. */
  leaseBucket: string;
  /** The bucket's stream: `KV_<bucket>`, as JetStream KV names it (outside the `<NS>_` prefix). */
  leaseStream: string;
  subject(topic: string): string;
  deadLetterSubject(topic: string): string;
  /** Durable pull consumer of one topic (every publisher replica pops through it). */
  consumer(topic: string): string;
  /** The topic a queue subject carries, or undefined when the subject is not one of the queue's. */
  topicOf(subject: string): string | undefined;
}

/** True when `topic` is 1–255 characters of `[A-Za-z0-9._:/-]`, the rule events follow too. */
export function isValidTopic(topic: string): boolean {
  return TOPIC.test(topic);
}

export function queueNames(namespace: string): QueueNames {
  const { namespace: ns } = messagingNames(namespace);
  const upper = ns.toUpperCase();
  const subjectPrefix = `${ns}.queue.t.`;
  const token = (topic: string): string => {
    if (!isValidTopic(topic)) throw new Error(`"${topic}" is not a valid topic`);
    return Buffer.from(topic, 'utf8').toString('base64url');
  };
  return {
    stream: `${upper}_QUEUE`,
    subjects: `${subjectPrefix}*`,
    deadLetterStream: `${upper}_QUEUE_DLQ`,
    deadLetterSubjects: `${ns}.queue.dlq.*`,
    leaseBucket: `${upper}_QUEUE_LEASES`,
    leaseStream: `KV_${upper}_QUEUE_LEASES`,
    subject: (topic) => subjectPrefix + token(topic),
    deadLetterSubject: (topic) => `${ns}.queue.dlq.${token(topic)}`,
    // a digest: a 255-character topic would give a 340-character token, longer than a file name
    consumer: (topic) => `queue-${createHash('sha256').update(token(topic)).digest('hex').slice(0, 40)}`,
    topicOf(subject) {
      if (!subject.startsWith(subjectPrefix)) return undefined;
      const topic = Buffer.from(subject.slice(subjectPrefix.length), 'base64url').toString('utf8');
      return isValidTopic(topic) ? topic : undefined;
    },
  };
}

/** Headers on a dead-lettered queue message. */
export const QueueHeaders = {
  Topic: 'Queue-Topic',
  /** Its sequence in the queue stream. */
  Sequence: 'Queue-Sequence',
  /** Deliveries made before it was set aside. */
  Deliveries: 'Queue-Deliveries',
} as const;

/** `POST /queue/:topic/messages` → 201. */
export interface QueuePushResult {
  /** The message's id before any delivery (`v1-<sequence>-0`); each pop gives a new one to ack with. */
  message_id: string;
  /** Stream sequence: the message's stable identity, the same on every delivery. */
  sequence: number;
}

/** One popped message: invisible to other consumers until acked, nacked or `lease_expires_at`. */
export interface QueueDelivery {
  /** Names this delivery (`v1-<sequence>-<delivery_count>`): ack or nack with it, on any replica. */
  message_id: string;
  sequence: number;
  topic: string;
  message: unknown;
  headers: Record<string, string>;
  /** 1 on the first delivery; the message is dead-lettered instead of a delivery past the limit. */
  delivery_count: number;
  consumer_id: string;
  pushed_at: string;
  lease_expires_at: string;
}

/** `GET /queue/:topic`. */
export interface QueueCounts {
  topic: string;
  /** Messages stored: waiting, in flight or waiting for redelivery. */
  depth: number;
  /** Stored messages never delivered yet. */
  waiting: number;
  /** Delivered and not acked yet (leased, or leased before and waiting for their redelivery). */
  in_flight: number;
  /** Messages delivered more than once and not acked yet. */
  redelivered: number;
  /** Messages set aside after the delivery limit, kept in the dead-letter stream. */
  dead_lettered: number;
}
