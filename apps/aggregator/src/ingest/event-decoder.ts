import { validateEvents } from '@lib/contracts';

import { UndecodableMessageError } from './ingest.errors.js';

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes one message of the events stream (a JSON array of events, as the publisher writes it) and
 * validates every event. Returns the array's inner text, ready to be joined with other messages' into
 * one JSON array for the database, so the events are never serialised again.
 */
export function decodeEventsMessage(
  data: Uint8Array,
  streamSequence: number,
): { inner: string; count: number } {
  let text: string;
  let parsed: unknown;
  try {
    text = decoder.decode(data).trim();
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UndecodableMessageError(streamSequence, `not UTF-8 JSON (${String(error)})`);
  }
  if (!Array.isArray(parsed)) throw new UndecodableMessageError(streamSequence, 'not a JSON array of events');
  const problems = validateEvents(parsed);
  if (problems.length > 0) {
    const first = problems[0];
    throw new UndecodableMessageError(
      streamSequence,
      `event ${first.index}: ${first.field} ${first.message}`,
    );
  }
  return { inner: text.slice(1, -1).trim(), count: parsed.length };
}
