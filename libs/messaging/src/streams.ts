import { Logger } from '@nestjs/common';
import {
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { messagingNames } from '@lib/contracts';

const DAY_MS = 24 * 3600 * 1000;
const DEAD_LETTER_MAX_AGE_MS = 30 * DAY_MS;
const DEAD_LETTER_DEDUP_MS = 7 * DAY_MS;

/** The settings of the event streams (the pipeline variables of `@lib/config`). */
export interface EventStreamSettings {
  NATS_NAMESPACE: string;
  STREAM_MAX_BYTES: number;
  STREAM_REPLICAS: number;
  DUPLICATE_WINDOW_MS: number;
}

/**
 * The streams of the event pipeline, declared in one place.
 * - events: work-queue retention (a message leaves once the aggregator acked it after commit) and
 *   `discard: new`, so a full stream refuses a publish (the publisher answers 503) instead of dropping
 *   stored events.
 * - dead letters: limits retention; kept until replayed or aged out (30 days).
 */
export function eventStreamDeclarations(settings: EventStreamSettings): StreamDeclaration[] {
  const names = messagingNames(settings.NATS_NAMESPACE);
  const ns = (ms: number): number => ms * 1_000_000;
  return [
    {
      name: names.eventsStream,
      subjects: [names.eventsSubjects],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      discard: DiscardPolicy.New,
      max_bytes: settings.STREAM_MAX_BYTES,
      num_replicas: settings.STREAM_REPLICAS,
      duplicate_window: ns(settings.DUPLICATE_WINDOW_MS),
    },
    {
      name: names.deadLetterStream,
      subjects: [names.deadLetterSubject],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: ns(DEAD_LETTER_MAX_AGE_MS),
      num_replicas: settings.STREAM_REPLICAS,
      // dead letters are few: remembering their ids for a week costs little, and an aggregator that died
      // between publishing a dead letter and committing past it does not file it twice when it comes back
      duplicate_window: ns(DEAD_LETTER_DEDUP_MS),
    },
  ];
}

/** A stream's configuration as the code declares it: a name and what differs from the server's defaults. */
export type StreamDeclaration = Partial<StreamConfig> & { name: string };

const logger = new Logger('StreamDeclarations');

/** Creates each stream, or updates it when it exists; safe for replicas starting together. */
export async function declareStreams(jsm: JetStreamManager, streams: StreamDeclaration[]): Promise<void> {
  for (const config of streams) {
    const name = config.name;
    try {
      await jsm.streams.info(name);
      await jsm.streams.update(name, config);
    } catch (error) {
      if (!isStreamNotFound(error)) throw error;
      try {
        await jsm.streams.add(config);
        logger.log(`created stream ${name}`);
      } catch (addError) {
        // another replica created it between our info and add
        if (!String(addError).includes('already in use')) throw addError;
      }
    }
  }
}

export function isStreamNotFound(error: unknown): boolean {
  return error instanceof Error && /stream not found/i.test(error.message);
}

export function isConsumerNotFound(error: unknown): boolean {
  return error instanceof Error && /consumer not found/i.test(error.message);
}
