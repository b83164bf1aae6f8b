import { describe, expect, it } from '@jest/globals';
import { loadConfig } from '@lib/config';
import { type IngestEvent, partitionOf, ValidationFailedError } from '@lib/contracts';
import type { NatsClient } from '@lib/messaging';
import { Registry } from 'prom-client';

import { publisherEnv, type PublisherConfig } from '../publisher.env.js';
import { PublishService } from './publish.service.js';

interface Published {
  subject: string;
  body: string;
  msgID: string;
}

/** A NATS client double for unit tests: records what would be published, with a given payload limit. */
function recordingClient(maxPayload: number): { client: NatsClient; published: Published[] } {
  const published: Published[] = [];
  const client = {
    isConnected: true,
    maxPayload,
    js: {
      publish: (subject: string, body: string, options: { msgID: string }) => {
        published.push({ subject, body, msgID: options.msgID });
        return Promise.resolve({ stream: 'S', seq: published.length, duplicate: false });
      },
    },
  } as unknown as NatsClient;
  return { client, published };
}

function service(maxPayload: number): {
  publisher: PublishService;
  published: Published[];
  config: PublisherConfig;
} {
  const config = loadConfig(publisherEnv, { NATS_NAMESPACE: 'unit' });
  const { client, published } = recordingClient(maxPayload);
  return { publisher: new PublishService(config, client, new Registry()), published, config };
}

function events(count: number, payloadBytes = 10): IngestEvent[] {
  return Array.from({ length: count }, (_, i) => ({
    topic: `t${i % 7}`,
    event_id: `e${i}`,
    timestamp: '2025-01-31T12:00:00Z',
    source: 'unit',
    payload: { i, pad: 'x'.repeat(payloadBytes) },
  }));
}

describe(PublishService.name, () => {
  it('sends one message per partition, each event once and in request order', async () => {
    const { publisher, published, config } = service(1024 * 1024);
    const batch = events(100);
    expect(await publisher.publish(batch)).toBe(100);
    const partitions = new Set(batch.map((e) => partitionOf(e.topic, config.PARTITIONS)));
    expect(published).toHaveLength(partitions.size);
    for (const message of published) {
      const partition = Number(message.subject.split('.').at(-1));
      const expected = batch.filter((e) => partitionOf(e.topic, config.PARTITIONS) === partition);
      expect(JSON.parse(message.body)).toEqual(expected);
      expect(message.subject).toBe(`unit.events.p.${partition}`);
    }
  });

  it('splits a partition group that exceeds the payload limit, keeping order and every event', async () => {
    const limit = 16 * 1024;
    const { publisher, published } = service(limit + 4 * 1024);
    const batch = events(300, 200).map((e) => ({ ...e, topic: 'one.topic' }));
    await publisher.publish(batch);
    expect(published.length).toBeGreaterThan(1);
    for (const message of published) expect(Buffer.byteLength(message.body)).toBeLessThanOrEqual(limit);
    const sent = published.flatMap((m) => JSON.parse(m.body) as IngestEvent[]);
    expect(sent.map((e) => e.event_id)).toEqual(batch.map((e) => e.event_id));
    expect(new Set(published.map((m) => m.msgID)).size).toBe(published.length);
  });

  it('refuses an event larger than a message can carry, naming its index, and publishes nothing', async () => {
    const { publisher, published } = service(8 * 1024);
    const batch = [...events(2), ...events(1, 10_000)];
    await expect(publisher.publish(batch)).rejects.toThrow(ValidationFailedError);
    await expect(publisher.publish(batch)).rejects.toMatchObject({
      details: [{ index: 2, field: 'payload' }],
    });
    expect(published).toEqual([]);
  });

  it('gives a retried request the same message ids under an Idempotency-Key, and other content other ids', async () => {
    const { publisher, published } = service(1024 * 1024);
    const batch = events(20);
    await publisher.publish(batch, 'key-1');
    const first = published.splice(0).map((m) => m.msgID);
    await publisher.publish(batch, 'key-1');
    expect(published.splice(0).map((m) => m.msgID)).toEqual(first);
    await publisher.publish(events(21), 'key-1');
    const other = published.splice(0).map((m) => m.msgID);
    expect(other.some((id) => first.includes(id))).toBe(false);
    await publisher.publish(batch);
    expect(published.some((m) => first.includes(m.msgID))).toBe(false);
  });

  it('refuses U+0000 in any field with the field named', async () => {
    const { publisher, published } = service(1024 * 1024);
    const batch = events(3);
    batch[1] = { ...batch[1], source: 'a\u0000b' };
    await expect(publisher.publish(batch)).rejects.toMatchObject({
      details: [{ index: 1, field: 'source' }],
    });
    expect(published).toEqual([]);
  });
});
