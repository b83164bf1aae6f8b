import type { IngestEvent } from '@lib/contracts';

let counter = 0;

/** A valid event; override any field. `event_id` is unique per call unless given. */
export function makeEvent(overrides: Partial<IngestEvent> = {}): IngestEvent {
  counter += 1;
  return {
    topic: 'test.topic',
    event_id: `evt-${process.pid}-${counter}`,
    timestamp: new Date().toISOString(),
    source: 'test',
    payload: { n: counter },
    ...overrides,
  };
}

/**
 * `total` events over `topics` topics: the originals first, then a `dupRatio` share of repeats of
 * them (same topic, id and payload, picked deterministically); returns the events and the number of
 * unique keys.
 */
export function makeLoad(
  total: number,
  { topics = 10, dupRatio = 0.3, prefix = 'load' } = {},
): {
  events: IngestEvent[];
  unique: number;
} {
  const uniqueCount = Math.round(total * (1 - dupRatio));
  const originals: IngestEvent[] = [];
  for (let i = 0; i < uniqueCount; i++) {
    originals.push({
      topic: `${prefix}.t${i % topics}`,
      event_id: `e${i}`,
      timestamp: new Date(Date.UTC(2025, 0, 1, 0, 0, i % 60)).toISOString(),
      source: 'load',
      payload: { i },
    });
  }
  const events = [...originals];
  for (let i = 0; events.length < total; i++) events.push(originals[(i * 7919) % originals.length]);
  return { events, unique: uniqueCount };
}

/** Posts `events` in batches of `batchSize` with `concurrency` requests in flight; returns the statuses. */
export async function postBatches(
  baseUrl: string,
  events: IngestEvent[],
  { batchSize = 500, concurrency = 4 } = {},
): Promise<{ accepted: number; statuses: number[] }> {
  const batches: IngestEvent[][] = [];
  for (let i = 0; i < events.length; i += batchSize) batches.push(events.slice(i, i + batchSize));
  let accepted = 0;
  const statuses: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < batches.length) {
        const batch = batches[next++];
        const response = await fetch(`${baseUrl}/publish`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ events: batch }),
        });
        statuses.push(response.status);
        if (response.status === 202) accepted += batch.length;
        await response.arrayBuffer();
      }
    }),
  );
  return { accepted, statuses };
}
