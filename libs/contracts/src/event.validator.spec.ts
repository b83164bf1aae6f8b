import { describe, expect, it } from '@jest/globals';

import type { FieldError } from './errors.js';
import type { IngestEvent } from './event.js';
import { findNulEvents, validateEvents } from './event.validator.js';

let counter = 0;

/** A valid event with a unique `event_id`; override any field. */
function event(overrides: Partial<IngestEvent> = {}): IngestEvent {
  counter += 1;
  return {
    topic: 'test.topic',
    event_id: `evt-${counter}`,
    timestamp: '2025-01-31T12:00:00Z',
    source: 'spec',
    payload: { n: counter },
    ...overrides,
  };
}

/** A valid event with `field` removed (the shape a client sends when it forgets one). */
function eventWithout(field: keyof IngestEvent): Record<string, unknown> {
  const incomplete: Record<string, unknown> = { ...event() };
  delete incomplete[field];
  return incomplete;
}

/** The `(index, field)` pairs of the problems, in order, for comparisons that ignore the wording. */
function fields(details: FieldError[]): { index?: number; field: string }[] {
  return details.map(({ index, field }) => ({ index, field }));
}

describe(validateEvents.name, () => {
  it('accepts a valid event', () => {
    expect(validateEvents([event()])).toEqual([]);
  });

  it('accepts an empty payload object', () => {
    expect(validateEvents([event({ payload: {} })])).toEqual([]);
  });

  it('accepts an empty batch', () => {
    expect(validateEvents([])).toEqual([]);
  });

  it('accepts a dotted topic with dashes and underscores', () => {
    expect(validateEvents([event({ topic: 'test-topic_v2.logs' })])).toEqual([]);
  });

  it('accepts a topic of 255 characters and every allowed punctuation', () => {
    expect(validateEvents([event({ topic: 'a'.repeat(255) })])).toEqual([]);
    expect(validateEvents([event({ topic: 'app:orders/v1.created-2_x' })])).toEqual([]);
  });

  it('accepts a timestamp with an offset, with milliseconds, or with a space separator', () => {
    const timestamps = ['2025-01-31T12:00:00+02:00', '2025-01-31T12:00:00.123Z', '2025-01-31 12:00:00Z'];
    expect(validateEvents(timestamps.map((timestamp) => event({ timestamp })))).toEqual([]);
  });

  it.each(['topic', 'event_id', 'timestamp', 'source', 'payload'] as const)(
    'reports a missing %s with the event index and the field',
    (field) => {
      expect(validateEvents([event(), eventWithout(field)])).toEqual([
        { index: 1, field, message: 'is required' },
      ]);
    },
  );

  it('reports every missing field of an empty object', () => {
    expect(fields(validateEvents([{}]))).toEqual(
      ['topic', 'event_id', 'timestamp', 'source', 'payload'].map((field) => ({ index: 0, field })),
    );
  });

  it('reports an event that is not an object', () => {
    expect(fields(validateEvents([null, 'event', 42, []]))).toEqual([
      { index: 0, field: '(event)' },
      { index: 1, field: '(event)' },
      { index: 2, field: '(event)' },
      { index: 3, field: '(event)' },
    ]);
  });

  it.each([
    ['a space', 'test topic'],
    ['the wildcard *', 'test.*'],
    ['the wildcard >', 'test.>'],
    ['an empty string', ''],
    ['256 characters', 'a'.repeat(256)],
    ['a non-ASCII letter', 'tést'],
  ])('reports a topic with %s', (_case, topic) => {
    const details = validateEvents([event({ topic })]);
    expect(details.length).toBeGreaterThan(0);
    for (const detail of details) expect(detail).toMatchObject({ index: 0, field: 'topic' });
  });

  it('explains the allowed topic characters', () => {
    expect(validateEvents([event({ topic: 'has space' })])).toEqual([
      {
        index: 0,
        field: 'topic',
        message: 'must be 1-255 characters of [A-Za-z0-9._:/-] (no spaces or wildcards)',
      },
    ]);
  });

  it('reports an empty event_id and one of 256 characters', () => {
    expect(fields(validateEvents([event({ event_id: '' }), event({ event_id: 'x'.repeat(256) })]))).toEqual([
      { index: 0, field: 'event_id' },
      { index: 1, field: 'event_id' },
    ]);
  });

  it('accepts an event_id of 255 characters', () => {
    expect(validateEvents([event({ event_id: 'x'.repeat(255) })])).toEqual([]);
  });

  it.each([
    ['without a zone', '2025-01-31T12:00:00'],
    ['that is not a date', 'yesterday'],
    ['with a day the month does not have', '2025-02-30T12:00:00Z'],
    ['with only a date', '2025-01-31'],
  ])('reports a timestamp %s', (_case, timestamp) => {
    expect(validateEvents([event({ timestamp })])).toEqual([
      {
        index: 0,
        field: 'timestamp',
        message: 'must be an ISO-8601 date-time with a zone, e.g. 2025-01-31T12:00:00Z',
      },
    ]);
  });

  it('reports a timestamp in year 0000, which PostgreSQL refuses', () => {
    expect(validateEvents([event({ timestamp: '0000-01-01T00:00:00Z' })])).toEqual([
      { index: 0, field: 'timestamp', message: 'is before the year 1' },
    ]);
  });

  it('reports a timestamp that is not a string', () => {
    const bad = { ...event(), timestamp: 1_738_324_800_000 };
    expect(fields(validateEvents([bad]))).toEqual([{ index: 0, field: 'timestamp' }]);
  });

  it.each([
    ['an array', [1, 2]],
    ['null', null],
    ['a string', '{"n":1}'],
    ['a number', 7],
  ])('reports a payload that is %s', (_case, payload) => {
    const bad = { ...event(), payload };
    expect(fields(validateEvents([bad]))).toEqual([{ index: 0, field: 'payload' }]);
  });

  it('reports an unknown field by its name', () => {
    const bad = { ...event(), extra: true };
    expect(validateEvents([bad])).toEqual([
      { index: 0, field: 'extra', message: 'is not a field of an event' },
    ]);
  });

  it('reports an empty source and one of 256 characters', () => {
    expect(fields(validateEvents([event({ source: '' }), event({ source: 's'.repeat(256) })]))).toEqual([
      { index: 0, field: 'source' },
      { index: 1, field: 'source' },
    ]);
  });

  it('reports the problems of several events, each with its own index', () => {
    const batch: unknown[] = [
      event(),
      event({ topic: 'bad topic' }),
      event(),
      { ...event(), payload: null, extra: 1 },
      event({ timestamp: '0000-06-01T00:00:00Z' }),
    ];

    const details = validateEvents(batch);

    expect(new Set(details.map((d) => d.index))).toEqual(new Set([1, 3, 4]));
    expect(fields(details)).toEqual(
      expect.arrayContaining([
        { index: 1, field: 'topic' },
        { index: 3, field: 'extra' },
        { index: 3, field: 'payload' },
        { index: 4, field: 'timestamp' },
      ]),
    );
    expect(details).toHaveLength(4);
  });

  it('leaves U+0000 in a payload to findNulEvents', () => {
    // documented: U+0000 is searched for on the serialised batch, not by the schema
    expect(validateEvents([event({ payload: { text: 'a\u0000b' } })])).toEqual([]);
  });
});

describe('validateEvents and what PostgreSQL can store', () => {
  it.each([
    ['a zone offset beyond ±15:59', '2025-01-31T12:00:00+16:00'],
    ['the largest offset a schema allows', '2025-01-31T12:00:00-23:59'],
    ['year 1 that is year 0 in UTC', '0001-01-01T00:00:00+01:00'],
  ])('refuses %s', (_, timestamp) => {
    expect(validateEvents([event({ timestamp })])).toEqual([
      expect.objectContaining({ index: 0, field: 'timestamp' }),
    ]);
  });

  it('accepts the extremes PostgreSQL stores', () => {
    expect(validateEvents([event({ timestamp: '2025-01-31T12:00:00+15:59' })])).toEqual([]);
    expect(validateEvents([event({ timestamp: '0001-01-01T00:00:00Z' })])).toEqual([]);
  });
});

describe(findNulEvents.name, () => {
  it('finds nothing in valid events', () => {
    expect(findNulEvents([event(), event({ payload: { nested: { list: ['a', 1, null, true] } } })])).toEqual(
      [],
    );
  });

  it('finds U+0000 in a top-level payload string', () => {
    expect(findNulEvents([event({ payload: { text: 'a\u0000b' } })])).toEqual([
      { position: 0, field: 'payload' },
    ]);
  });

  it('finds U+0000 nested deep in objects and arrays of the payload', () => {
    const batch = [
      event(),
      event({ payload: { a: { b: [{ c: ['ok', 'x\u0000'] }] } } }),
      event(),
      event({ payload: { list: [[['\u0000']]] } }),
    ];
    expect(findNulEvents(batch)).toEqual([
      { position: 1, field: 'payload' },
      { position: 3, field: 'payload' },
    ]);
  });

  it('finds U+0000 in a payload key', () => {
    expect(findNulEvents([event({ payload: { 'key\u0000': 1 } })])).toEqual([
      { position: 0, field: 'payload' },
    ]);
  });

  it('finds U+0000 outside the payload too', () => {
    expect(findNulEvents([event(), event({ event_id: 'id\u0000' }), event({ source: '\u0000' })])).toEqual([
      { position: 1, field: 'event_id' },
      { position: 2, field: 'source' },
    ]);
  });

  it('does not mistake the escaped text \\u0000 for the character', () => {
    expect(findNulEvents([event({ payload: { text: '\\u0000' } })])).toEqual([]);
  });
});
