import { UndecodableMessageError } from './ingest.errors.js';

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Checks the shape of one message of the events stream (UTF-8 text of a JSON array, as the publisher
 * writes it) and returns the array's inner text, ready to be joined with other messages' into one
 * JSON array for the database: events are neither parsed nor serialised again in this process.
 *
 * The content itself was validated by the publisher, and PostgreSQL enforces it once more (column
 * types, NOT NULL and CHECK constraints of the events table): a message that passes this check but
 * breaks a constraint fails its batch with a data error, is isolated and, after `MAX_DELIVER`
 * attempts, dead-lettered.
 */
export function decodeEventsMessage(data: Uint8Array, streamSequence: number): string {
  let text: string;
  try {
    text = decoder.decode(data).trim();
  } catch {
    throw new UndecodableMessageError(streamSequence, 'not UTF-8 text');
  }
  if (!text.startsWith('[') || !text.endsWith(']')) {
    throw new UndecodableMessageError(streamSequence, 'not a JSON array of events');
  }
  return text.slice(1, -1).trim();
}
