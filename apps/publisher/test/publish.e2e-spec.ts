import type { Server } from 'node:http';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { loadConfig } from '@lib/config';
import { messagingNames } from '@lib/contracts';
import {
  createTestApp,
  deleteStreams,
  dropSchema,
  makeEvent,
  NatsServerProcess,
  TEST_NATS_URL,
  uniqueName,
  waitFor,
} from '@lib/testing';
import request from 'supertest';

import { publisherEnv } from '../src/publisher.env.js';
import { PublisherModule } from '../src/publisher.module.js';

interface ErrorResponse {
  statusCode: number;
  error: string;
  message: string;
  details?: { index?: number; field: string; message: string }[];
}

async function startPublisher(env: Record<string, string>): Promise<NestFastifyApplication> {
  const config = loadConfig(publisherEnv, { ...process.env, LOG_LEVEL: 'error', ...env });
  return createTestApp(PublisherModule.forRoot(config), config.BODY_LIMIT_BYTES);
}

describe('POST /publish', () => {
  const namespace = uniqueName('pub');
  const schema = uniqueName('pub');
  const names = messagingNames(namespace);
  let app: NestFastifyApplication;
  let server: Server;
  let nc: NatsConnection;
  let jsm: JetStreamManager;

  const storedMessages = async (): Promise<number> =>
    (await jsm.streams.info(names.eventsStream)).state.messages;

  beforeAll(async () => {
    app = await startPublisher({
      NATS_NAMESPACE: namespace,
      DB_SCHEMA: schema,
      PUBLISH_BATCH_LIMIT: '10',
      BODY_LIMIT_BYTES: '4096',
    });
    server = app.getHttpServer();
    nc = await connect({ servers: TEST_NATS_URL });
    jsm = await jetstreamManager(nc);
  });

  afterAll(async () => {
    await app?.close();
    await nc?.close();
    await deleteStreams(namespace);
    await dropSchema(schema);
  });

  it('accepts one event with 202 only after JetStream stored it', async () => {
    const before = await storedMessages();
    const response = await request(server)
      .post('/publish')
      .send(makeEvent({ topic: 'test-topic_v2.logs' }));
    expect(response.status).toBe(202);
    expect(response.body).toEqual({ accepted: 1, status: 'queued' });
    expect(await storedMessages()).toBe(before + 1);
  });

  it('accepts {"events": [...]} and a bare array, grouping events by partition', async () => {
    const events = Array.from({ length: 10 }, (_, i) => makeEvent({ topic: `orders.${i % 3}` }));
    const wrapped = await request(server).post('/publish').send({ events });
    expect(wrapped.status).toBe(202);
    expect(wrapped.body).toEqual({ accepted: 10, status: 'queued' });
    const bare = await request(server).post('/publish').send(events.slice(0, 4));
    expect(bare.status).toBe(202);
    expect(bare.body).toEqual({ accepted: 4, status: 'queued' });
  });

  it('publishes a retried request with the same Idempotency-Key only once', async () => {
    const before = await storedMessages();
    const body = { events: [makeEvent({ topic: 'retry.a' }), makeEvent({ topic: 'retry.b' })] };
    for (let attempt = 0; attempt < 3; attempt++) {
      const response = await request(server).post('/publish').set('idempotency-key', 'batch-42').send(body);
      expect(response.status).toBe(202);
      expect(response.body).toEqual({ accepted: 2, status: 'queued' });
    }
    const messagesOfOneAttempt = (await storedMessages()) - before;
    expect(messagesOfOneAttempt).toBeGreaterThan(0);
    await request(server).post('/publish').set('idempotency-key', 'batch-43').send(body).expect(202);
    expect((await storedMessages()) - before).toBe(2 * messagesOfOneAttempt);
    await request(server).post('/publish').set('idempotency-key', 'no spaces').send(body).expect(400);
  });

  it('publishes other content sent under a reused Idempotency-Key instead of dropping it', async () => {
    const before = await storedMessages();
    await request(server)
      .post('/publish')
      .set('idempotency-key', 'reused')
      .send(makeEvent({ topic: 'k' }))
      .expect(202);
    await request(server)
      .post('/publish')
      .set('idempotency-key', 'reused')
      .send(makeEvent({ topic: 'k' }))
      .expect(202);
    expect((await storedMessages()) - before).toBe(2);
  });

  it('never turns a topic into a subject token: only partition subjects exist', async () => {
    await request(server)
      .post('/publish')
      .send(makeEvent({ topic: 'a.b:c/d-e_f' }))
      .expect(202);
    const info = await jsm.streams.info(names.eventsStream, { subjects_filter: '>' });
    const subjects = Object.keys(info.state.subjects ?? {});
    expect(subjects.length).toBeGreaterThan(0);
    for (const subject of subjects) expect(subject).toMatch(new RegExp(`^${namespace}\\.events\\.p\\.\\d+$`));
  });

  const badBodies: [string, unknown, string][] = [
    ['a timestamp without a zone', makeEvent({ timestamp: '2025-01-01T10:00:00' }), 'timestamp'],
    ['a timestamp that is no date', makeEvent({ timestamp: 'yesterday' }), 'timestamp'],
    ['a missing source', { ...makeEvent(), source: undefined }, 'source'],
    ['a topic with a space', makeEvent({ topic: 'a topic' }), 'topic'],
    ['a topic with *', makeEvent({ topic: 'orders.*' }), 'topic'],
    ['a topic with >', makeEvent({ topic: 'orders.>' }), 'topic'],
    ['an empty event_id', makeEvent({ event_id: '' }), 'event_id'],
    ['a payload that is an array', { ...makeEvent(), payload: [1, 2] }, 'payload'],
    ['a payload that is a string', { ...makeEvent(), payload: 'text' }, 'payload'],
    ['a payload holding U+0000', makeEvent({ payload: { text: 'a\u0000b' } }), 'payload'],
    ['an unknown field', { ...makeEvent(), extra: 1 }, 'extra'],
    ['an empty batch', { events: [] }, 'events'],
    ['a batch over the limit', { events: Array.from({ length: 11 }, () => makeEvent()) }, 'events'],
    ['events that is not an array', { events: 'nope' }, 'events'],
  ];

  it.each(badBodies)('refuses %s with 400 naming the field, publishing nothing', async (_, body, field) => {
    const before = await storedMessages();
    const response = await request(server)
      .post('/publish')
      .send(body as object);
    expect(response.status).toBe(400);
    const error = response.body as ErrorResponse;
    expect(error.error).toBe('VALIDATION_FAILED');
    expect(error.details?.map((d) => d.field)).toContain(field);
    expect(await storedMessages()).toBe(before);
  });

  it('lists every bad field of a batch with its index and publishes none of it', async () => {
    const before = await storedMessages();
    const events = [
      makeEvent(),
      makeEvent({ topic: 'bad topic' }),
      makeEvent(),
      { ...makeEvent(), timestamp: 'x', payload: 3 },
    ];
    const response = await request(server).post('/publish').send({ events });
    expect(response.status).toBe(400);
    const details = (response.body as ErrorResponse).details ?? [];
    expect(details).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ index: 1, field: 'topic' }),
        expect.objectContaining({ index: 3, field: 'timestamp' }),
        expect.objectContaining({ index: 3, field: 'payload' }),
      ]),
    );
    expect(details.every((d) => d.index === 1 || d.index === 3)).toBe(true);
    expect(await storedMessages()).toBe(before);
  });

  it('refuses a body that is not JSON with 400 and one over the size limit with 413', async () => {
    const before = await storedMessages();
    const notJson = await request(server)
      .post('/publish')
      .set('content-type', 'application/json')
      .send('{"topic":');
    expect(notJson.status).toBe(400);
    expect((notJson.body as ErrorResponse).error).toBe('VALIDATION_FAILED');
    const tooLarge = await request(server)
      .post('/publish')
      .send(makeEvent({ payload: { blob: 'x'.repeat(5000) } }));
    expect(tooLarge.status).toBe(413);
    expect((tooLarge.body as ErrorResponse).error).toBe('PAYLOAD_TOO_LARGE');
    expect(await storedMessages()).toBe(before);
  });

  it('serves /health, /metrics, /docs, /stats and /events', async () => {
    const health = await request(server).get('/health');
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({
      status: 'ok',
      info: { nats: { status: 'up' }, postgres: { status: 'up' } },
    });
    const metrics = await request(server).get('/metrics');
    expect(metrics.text).toContain('publisher_events_accepted_total');
    expect((await request(server).get('/docs')).status).toBe(200);
    const stats = await request(server).get('/stats');
    expect(stats.body).toMatchObject({ received: 0, unique_processed: 0, duplicate_dropped: 0 });
    const events = await request(server).get('/events?topic=orders.1&limit=5');
    expect(events.body).toEqual({ events: [], next_cursor: null });
    expect((await request(server).get('/events?limit=0')).status).toBe(400);
    expect((await request(server).get('/events?cursor=zzz')).status).toBe(400);
  });
});

describe('POST /publish when JetStream cannot persist', () => {
  it('answers 503 with Retry-After while NATS is down, and 202 again once it is back', async () => {
    const nats = await new NatsServerProcess().start();
    const namespace = uniqueName('down');
    const schema = uniqueName('down');
    const app = await startPublisher({ NATS_URL: nats.url, NATS_NAMESPACE: namespace, DB_SCHEMA: schema });
    try {
      const server = app.getHttpServer();
      await request(server).post('/publish').send(makeEvent()).expect(202);
      await nats.stop();
      const refused = await waitFor(
        async () => {
          const response = await request(server).post('/publish').send(makeEvent());
          return response.status === 503 ? response : undefined;
        },
        { description: '503 while NATS is down' },
      );
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      expect((refused.body as ErrorResponse).error).toBe('UNAVAILABLE');
      const health = await request(server).get('/health');
      expect(health.status).toBe(503);
      expect(health.body).toMatchObject({ status: 'error', error: { nats: { status: 'down' } } });
      await nats.start();
      await waitFor(async () => (await request(server).post('/publish').send(makeEvent())).status === 202, {
        description: '202 after NATS is back',
      });
    } finally {
      await app.close();
      await nats.dispose();
      await dropSchema(schema);
    }
  });

  it('answers 503 with Retry-After when the stream is full, never 202', async () => {
    const namespace = uniqueName('full');
    const schema = uniqueName('full');
    const app = await startPublisher({
      NATS_NAMESPACE: namespace,
      DB_SCHEMA: schema,
      STREAM_MAX_BYTES: '4096',
    });
    try {
      const server = app.getHttpServer();
      const statuses: number[] = [];
      for (let i = 0; i < 40 && !statuses.includes(503); i++) {
        const response = await request(server)
          .post('/publish')
          .send(makeEvent({ payload: { pad: 'x'.repeat(400) } }));
        statuses.push(response.status);
        if (response.status === 503) {
          expect(response.headers['retry-after']).toBeDefined();
          expect((response.body as ErrorResponse).message).toMatch(/full/);
        }
      }
      expect(statuses).toContain(503);
      expect(statuses.every((s) => s === 202 || s === 503)).toBe(true);
    } finally {
      await app.close();
      await deleteStreams(namespace);
      await dropSchema(schema);
    }
  });
});
