import { describe, expect, it } from '@jest/globals';

import {
  exitCodeOf,
  formatProgressLine,
  formatSummary,
  generateEvents,
  type LoadReport,
  parsePublishArgs,
  percentile,
  retryDelayMs,
  splitBatches,
  summarizeLatencies,
  UsageError,
} from './load.js';

function report(overrides: Partial<LoadReport> = {}): LoadReport {
  return {
    url: 'http://127.0.0.1:3000',
    seed: 42,
    batchSize: 500,
    concurrency: 16,
    sent: 20_000,
    batches: 40,
    acceptedEvents: 20_000,
    acceptedBatches: 40,
    rejectedEvents: 0,
    rejectedBatches: 0,
    failedEvents: 0,
    failedBatches: 0,
    retries: 2,
    requests: 42,
    elapsedMs: 2_000,
    latency: { count: 40, p50: 12.34, p99: 80, max: 95 },
    expectedUnique: 14_000,
    duplicates: 6_000,
    ...overrides,
  };
}

describe('parsePublishArgs', () => {
  it('applies the documented defaults', () => {
    expect(parsePublishArgs([])).toEqual({
      events: 20_000,
      dupRatio: 0.3,
      topics: 10,
      concurrency: 16,
      batch: 500,
      url: 'http://127.0.0.1:3000',
      seed: undefined,
      maxRetries: 10,
      timeoutMs: 30_000,
    });
  });

  it('reads every option', () => {
    const options = parsePublishArgs(
      '--events 100 --dup-ratio 0.5 --topics 3 --concurrency 4 --batch 10 --url http://127.0.0.1:4000/ --seed 7 --max-retries 2 --timeout 1000'.split(
        ' ',
      ),
    );
    expect(options).toEqual({
      events: 100,
      dupRatio: 0.5,
      topics: 3,
      concurrency: 4,
      batch: 10,
      url: 'http://127.0.0.1:4000',
      seed: 7,
      maxRetries: 2,
      timeoutMs: 1_000,
    });
  });

  it('answers help to --help and -h', () => {
    expect(parsePublishArgs(['--help'])).toBe('help');
    expect(parsePublishArgs(['-h', '--events', 'x'])).toBe('help');
  });

  it.each([
    [['--events', 'many'], '--events must be a whole number, got "many"'],
    [['--events', '0'], '--events must be between 1 and 5000000, got 0'],
    [['--events=-5'], '--events must be a whole number, got "-5"'],
    [['--dup-ratio', '1'], '--dup-ratio must be a number from 0 up to (not including) 1, got "1"'],
    [['--dup-ratio', '30%'], '--dup-ratio must be a number'],
    [['--concurrency', '2.5'], '--concurrency must be a whole number'],
    [['--url', 'localhost:3000'], '--url must use http: or https:'],
    [['--url', 'not a url'], '--url must be a URL'],
    [['--events'], "Option '--events <value>' argument missing"],
    [['--event', '5'], "Unknown option '--event'"],
    [['extra'], "Unexpected argument 'extra'"],
  ])('refuses %j with a message naming the option', (argv, message) => {
    expect(() => parsePublishArgs(argv)).toThrow(UsageError);
    expect(() => parsePublishArgs(argv)).toThrow(message);
  });
});

describe('generateEvents', () => {
  it('makes the asked number of events, of which the dup-ratio share repeats an earlier one', () => {
    const load = generateEvents({ events: 1_000, dupRatio: 0.3, topics: 10, seed: 1 });
    expect(load.events).toHaveLength(1_000);
    expect(load.unique).toBe(700);
    expect(load.duplicates).toBe(300);
    const seen = new Set<string>();
    let repeats = 0;
    for (const event of load.events) {
      const key = `${event.topic}/${event.event_id}`;
      if (seen.has(key)) repeats += 1;
      seen.add(key);
    }
    expect(seen.size).toBe(700);
    expect(repeats).toBe(300);
  });

  it('repeats the original exactly, so duplicates never conflict', () => {
    const load = generateEvents({ events: 500, dupRatio: 0.5, topics: 4, seed: 2 });
    const byKey = new Map<string, string>();
    for (const event of load.events) {
      const key = `${event.topic}/${event.event_id}`;
      const encoded = JSON.stringify(event);
      expect(byKey.get(key) ?? encoded).toBe(encoded);
      byKey.set(key, encoded);
    }
  });

  it('spreads the originals evenly over the topics', () => {
    const load = generateEvents({ events: 1_000, dupRatio: 0, topics: 10, seed: 3 });
    const perTopic = new Map<string, number>();
    for (const event of load.events) perTopic.set(event.topic, (perTopic.get(event.topic) ?? 0) + 1);
    expect([...perTopic.keys()].sort()).toEqual(Array.from({ length: 10 }, (_, i) => `load.t${i}`).sort());
    expect(new Set(perTopic.values())).toEqual(new Set([100]));
  });

  it('starts with an original and keeps one even at a high dup-ratio', () => {
    for (let seed = 0; seed < 20; seed++) {
      const load = generateEvents({ events: 3, dupRatio: 0.99, topics: 2, seed });
      expect(load.unique).toBe(1);
      expect(new Set(load.events)).toEqual(new Set([load.events[0]]));
    }
  });

  it('makes valid events: ISO timestamps with Z, allowed topic characters, object payloads', () => {
    const { events } = generateEvents({
      events: 50,
      dupRatio: 0.2,
      topics: 5,
      seed: 4,
      startTime: Date.now(),
    });
    for (const event of events) {
      expect(event.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(event.topic).toMatch(/^[A-Za-z0-9._:/-]{1,255}$/);
      expect(event.source).not.toBe('');
      expect(typeof event.payload).toBe('object');
    }
  });

  it('reproduces the same load from the same seed and another from another seed', () => {
    const shape = { events: 200, dupRatio: 0.3, topics: 10 };
    const a = JSON.stringify(generateEvents({ ...shape, seed: 99 }).events);
    expect(JSON.stringify(generateEvents({ ...shape, seed: 99 }).events)).toBe(a);
    expect(JSON.stringify(generateEvents({ ...shape, seed: 100 }).events)).not.toBe(a);
  });
});

describe('splitBatches', () => {
  it('cuts consecutive batches with a shorter last one', () => {
    expect(splitBatches([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(splitBatches([], 3)).toEqual([]);
  });
});

describe('retryDelayMs', () => {
  it('reads seconds and HTTP dates, within bounds', () => {
    const now = Date.UTC(2025, 0, 1, 12, 0, 0);
    expect(retryDelayMs('2', now)).toBe(2_000);
    expect(retryDelayMs('0.5', now)).toBe(500);
    expect(retryDelayMs(new Date(now + 3_000).toUTCString(), now)).toBe(3_000);
    expect(retryDelayMs(new Date(now - 3_000).toUTCString(), now)).toBe(0);
    expect(retryDelayMs('3600', now)).toBe(30_000);
  });

  it('falls back when the header is missing or unreadable', () => {
    expect(retryDelayMs(null)).toBe(1_000);
    expect(retryDelayMs('soon')).toBe(1_000);
  });
});

describe('percentile', () => {
  it('takes the nearest rank', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile(values, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });

  it('is summarized from unsorted values', () => {
    expect(summarizeLatencies([30, 10, 20])).toEqual({ count: 3, p50: 20, p99: 30, max: 30 });
  });
});

describe('formatSummary', () => {
  it('lists sent, accepted, rejected, retried, rate, latency and expected unique events', () => {
    const text = formatSummary(report());
    expect(text).toContain('every batch accepted');
    expect(text).toMatch(/sent\s+20,000 events in 40 batches \(500 per batch, 16 in flight\)/);
    expect(text).toMatch(/accepted\s+20,000 events \(40 batches\)/);
    expect(text).toMatch(/rejected \(4xx\)\s+0 events/);
    expect(text).toMatch(/retried \(503\)\s+2 requests/);
    expect(text).toMatch(/throughput\s+10,000 events\/s accepted over 2.00 s/);
    expect(text).toMatch(/request latency\s+p50 12.3 ms, p99 80.0 ms/);
    expect(text).toMatch(/expected unique\s+14,000 events \(6,000 duplicates, seed 42\)/);
    expect(text).not.toContain('failed');
  });

  it('shows rejections, failures and the first error, and exits non-zero', () => {
    const bad = report({
      acceptedEvents: 19_000,
      acceptedBatches: 38,
      rejectedEvents: 500,
      rejectedBatches: 1,
      failedEvents: 500,
      failedBatches: 1,
      firstError: '400 {"error":"VALIDATION_FAILED"}',
    });
    const text = formatSummary(bad);
    expect(text).toContain('NOT accepted');
    expect(text).toMatch(/failed\s+500 events \(1 batches\)/);
    expect(text).toMatch(/first error\s+400 \{"error":"VALIDATION_FAILED"\}/);
    expect(exitCodeOf(bad)).toBe(1);
    expect(exitCodeOf(report())).toBe(0);
  });

  it('formats a progress line', () => {
    expect(formatProgressLine(4_000, 20_000, 500)).toBe(
      'published 4,000/20,000 events (20%), 8,000 events/s',
    );
  });
});
