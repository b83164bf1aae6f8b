import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import {
  type QueueCounts,
  type QueueDelivery,
  QueueHeaders,
  queueNames,
  type QueuePushResult,
} from '@lib/contracts';
import { loadConfig } from '@lib/config';
import {
  createTestApp,
  deleteStreams,
  dropSchema,
  freePort,
  NatsServerProcess,
  ServiceProcess,
  startReplicas,
  TEST_DATABASE_URL,
  TEST_NATS_URL,
  uniqueName,
  waitFor,
} from '@lib/testing';
import request from 'supertest';

import { publisherEnv } from '../src/publisher.env.js';
import { PublisherModule } from '../src/publisher.module.js';

interface Answer<T = Record<string, unknown>> {
  status: number;
  body: T;
}

/** A client of one publisher replica's queue routes; answers status and parsed body (undefined on 204). */
class QueueClient {
  constructor(readonly replica: ServiceProcess) {}

  push(topic: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer<QueuePushResult>> {
    return this.call('POST', `/queue/${encodeURIComponent(topic)}/messages`, body, headers);
  }

  pop(
    topic: string,
    consumerId: string,
    extra: Record<string, unknown> = {},
  ): Promise<Answer<QueueDelivery>> {
    return this.call('POST', `/queue/${encodeURIComponent(topic)}/pop`, {
      consumer_id: consumerId,
      ...extra,
    });
  }

  ack(topic: string, consumerId: string, messageId: string): Promise<Answer> {
    return this.call('POST', `/queue/${encodeURIComponent(topic)}/ack`, {
      consumer_id: consumerId,
      message_id: messageId,
    });
  }

  nack(topic: string, consumerId: string, messageId: string, delayMs?: number): Promise<Answer> {
    return this.call('POST', `/queue/${encodeURIComponent(topic)}/nack`, {
      consumer_id: consumerId,
      message_id: messageId,
      delay_ms: delayMs,
    });
  }

  async counts(topic: string): Promise<QueueCounts> {
    const answer = await this.call<QueueCounts>('GET', `/queue/${encodeURIComponent(topic)}`);
    if (answer.status !== 200) throw new Error(`GET /queue/${topic} answered ${answer.status}`);
    return answer.body;
  }

  async call<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Answer<T>> {
    const response = await fetch(`${this.replica.url}${path}`, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
  }
}

/** Resolves after `ms` (used only to aim a race, never to wait for a condition). */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** Two publisher replicas sharing one NATS namespace and database schema. */
async function startPublisherPair(
  name: string,
  env: Record<string, string>,
): Promise<{ replicas: [ServiceProcess, ServiceProcess]; namespace: string; schema: string }> {
  const namespace = uniqueName(name);
  const schema = uniqueName(name);
  const common = {
    NATS_URL: TEST_NATS_URL,
    DATABASE_URL: TEST_DATABASE_URL,
    NATS_NAMESPACE: namespace,
    DB_SCHEMA: schema,
    ...env,
  };
  const [first, second] = await startReplicas('publisher', [common, common]);
  return { replicas: [first, second], namespace, schema };
}

/**
 * Pops every message of the topic that becomes visible within `timeoutMs` with four consumers spread
 * over the replicas, each acking on the other replica; the sequences acked.
 */
async function drain(
  clients: QueueClient[],
  topic: string,
  expected: number,
  timeoutMs = 30_000,
): Promise<number[]> {
  const seen: number[] = [];
  const consume = async (worker: number): Promise<void> => {
    const [client, other] = [clients[worker % clients.length], clients[(worker + 1) % clients.length]];
    for (let i = 0; i < 10_000; i++) {
      const popped = await client
        .pop(topic, `drainer-${worker}`, { visibility_ms: 5_000 })
        .catch(() => undefined);
      if (popped?.status !== 200) return;
      const acked = await other.ack(topic, `drainer-${worker}`, popped.body.message_id);
      if (acked.status === 200) seen.push(popped.body.sequence);
    }
  };
  await waitFor(
    async () => {
      await Promise.all([0, 1, 2, 3].map(consume));
      return new Set(seen).size >= expected;
    },
    { timeoutMs, intervalMs: 100, description: `${expected} messages of ${topic} popped and acked` },
  );
  return seen;
}

describe('work queue over two publisher replicas', () => {
  let replicas: [ServiceProcess, ServiceProcess];
  let namespace: string;
  let schema: string;
  let one: QueueClient;
  let two: QueueClient;
  let topicCount = 0;
  const freshTopic = (): string => `jobs.t${++topicCount}`;

  beforeAll(async () => {
    ({ replicas, namespace, schema } = await startPublisherPair('queue', {
      QUEUE_VISIBILITY_MS: '1500',
      QUEUE_VISIBILITY_MAX_MS: '60000',
      QUEUE_MAX_DELIVER: '2',
      QUEUE_MESSAGE_MAX_BYTES: '1024',
    }));
    [one, two] = replicas.map((replica) => new QueueClient(replica));
  });

  afterAll(async () => {
    await Promise.all((replicas ?? []).map((replica) => replica.kill()));
    if (namespace) await deleteStreams(namespace, TEST_NATS_URL);
    if (schema) await dropSchema(schema);
  });

  it('pushes, pops and acks a message, which never comes back', async () => {
    const topic = freshTopic();
    const pushed = await one.push(topic, { message: { to: 'a@b.c' }, headers: { lang: 'id' } });
    expect(pushed.status).toBe(201);
    expect(pushed.body).toEqual({
      message_id: expect.stringMatching(/^v1-\d+-0$/),
      sequence: expect.any(Number),
    });

    const popped = await two.pop(topic, 'worker-a', { visibility_ms: 1_000 });
    expect(popped.status).toBe(200);
    expect(popped.body).toMatchObject({
      sequence: pushed.body.sequence,
      topic,
      message: { to: 'a@b.c' },
      headers: { lang: 'id' },
      delivery_count: 1,
      consumer_id: 'worker-a',
    });
    expect(Date.parse(popped.body.lease_expires_at)).toBeGreaterThan(Date.now());

    expect((await one.ack(topic, 'worker-a', popped.body.message_id)).status).toBe(200);
    expect(await two.counts(topic)).toMatchObject({ depth: 0, in_flight: 0 });
    // watched past the visibility: an acked message is gone from the stream, so no pop can see it
    const until = Date.now() + 2_500;
    while (Date.now() < until) {
      for (const client of [one, two]) expect((await client.pop(topic, 'worker-b')).status).toBe(204);
    }
  });

  it('redelivers a message not acked within its visibility to any consumer, and refuses the late ack', async () => {
    const topic = freshTopic();
    await one.push(topic, { message: 'job' });
    const first = await one.pop(topic, 'worker-a', { visibility_ms: 1_000 });
    expect(first.body.delivery_count).toBe(1);
    expect((await two.pop(topic, 'worker-b')).status).toBe(204);

    const second = await waitFor(
      async () => {
        const popped = await two.pop(topic, 'worker-b');
        return popped.status === 200 ? popped : undefined;
      },
      { timeoutMs: 15_000, description: 'the redelivery' },
    );
    expect(second.body).toMatchObject({
      sequence: first.body.sequence,
      delivery_count: 2,
      consumer_id: 'worker-b',
    });
    expect(second.body.message_id).not.toBe(first.body.message_id);

    const late = await one.ack(topic, 'worker-a', first.body.message_id);
    expect(late.status).toBe(409);
    expect(late.body).toMatchObject({ error: 'NOT_LEASE_HOLDER', message: expect.stringMatching(/expired/) });
    expect((await one.ack(topic, 'worker-b', second.body.message_id)).status).toBe(200);
    expect(await one.counts(topic)).toMatchObject({ depth: 0, in_flight: 0 });
  });

  it('uses QUEUE_VISIBILITY_MS when a pop names no visibility', async () => {
    const topic = freshTopic();
    await two.push(topic, { message: 'default visibility' });
    const first = await one.pop(topic, 'worker-a');
    const lease = Date.parse(first.body.lease_expires_at) - Date.parse(first.body.pushed_at);
    expect(lease).toBeGreaterThan(1_000);
    expect(lease).toBeLessThan(60_000);
    const again = await waitFor(
      async () => {
        const popped = await two.pop(topic, 'worker-b');
        return popped.status === 200 ? popped : undefined;
      },
      { timeoutMs: 15_000, description: 'the redelivery after QUEUE_VISIBILITY_MS' },
    );
    expect(again.body.delivery_count).toBe(2);
    const late = await one.ack(topic, 'worker-a', first.body.message_id);
    expect(late.status).toBe(409);
    expect(late.body).toMatchObject({ error: 'NOT_LEASE_HOLDER', message: expect.stringMatching(/expired/) });
    expect((await two.ack(topic, 'worker-b', again.body.message_id)).status).toBe(200);
  });

  it('never hands one message to two consumers at once, and acks on the other replica', async () => {
    const topic = freshTopic();
    const total = 60;
    const pushes = await Promise.all(
      Array.from({ length: total }, (_, i) => (i % 2 ? one : two).push(topic, { message: { i } })),
    );
    expect(pushes.every((p) => p.status === 201)).toBe(true);

    const held: { consumer: string; popped: QueueDelivery; on: QueueClient }[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async (_, c) => {
        const client = c % 2 ? one : two;
        for (let i = 0; i < total; i++) {
          const popped = await client.pop(topic, `racer-${c}`, { visibility_ms: 30_000 });
          if (popped.status === 204) return;
          expect(popped.status).toBe(200);
          held.push({ consumer: `racer-${c}`, popped: popped.body, on: client });
        }
      }),
    );
    const sequences = held.map((h) => h.popped.sequence);
    expect(new Set(sequences).size).toBe(sequences.length);
    expect(new Set(sequences)).toEqual(new Set(pushes.map((p) => p.body.sequence)));
    expect((await one.counts(topic)).in_flight).toBe(total);

    const acks = await Promise.all(
      held.map(({ consumer, popped, on }) =>
        (on === one ? two : one).ack(topic, consumer, popped.message_id),
      ),
    );
    expect(acks.map((a) => a.status)).toEqual(held.map(() => 200));
    expect(await two.counts(topic)).toMatchObject({ depth: 0, in_flight: 0 });
  });

  it("refuses the ack of an expired lease even when it races the new holder's ack", async () => {
    const topic = freshTopic();
    for (let round = 0; round < 5; round++) {
      await one.push(topic, { message: { round } });
      const first = await one.pop(topic, 'slow', { visibility_ms: 200 });
      const second = await waitFor(
        async () => {
          const popped = await two.pop(topic, 'fast');
          return popped.status === 200 ? popped : undefined;
        },
        { timeoutMs: 10_000, description: 'the redelivery' },
      );
      const [late, current] = await Promise.all([
        one.ack(topic, 'slow', first.body.message_id),
        two.ack(topic, 'fast', second.body.message_id),
      ]);
      expect(current.status).toBe(200);
      // 409 when it read the new holder's lease, 410 when the new holder's ack was already in
      expect([409, 410]).toContain(late.status);
    }
    expect(await one.counts(topic)).toMatchObject({ depth: 0 });
  });

  it('lets exactly one ack win when an old holder acks while the redelivery is being popped', async () => {
    const rounds = await Promise.all(
      Array.from({ length: 12 }, async (_, round) => {
        const topic = `${freshTopic()}.race`;
        await one.push(topic, { message: { round } });
        const first = await one.pop(topic, 'slow', { visibility_ms: 300 });
        // aims the old holder's ack at the moment the message becomes visible again, give or take 100 ms
        const aim = Date.parse(first.body.lease_expires_at) - Date.now() + (round % 5) * 50 - 100;
        const lateAck = delay(aim).then(() => one.ack(topic, 'slow', first.body.message_id));
        let taken: Answer<QueueDelivery> | undefined;
        for (const until = Date.now() + aim + 1_500; !taken && Date.now() < until;) {
          const popped = await two.pop(topic, 'fast', { visibility_ms: 30_000 });
          if (popped.status === 200) taken = popped;
        }
        const late = await lateAck;
        const fastAck = taken && (await two.ack(topic, 'fast', taken.body.message_id));
        return { late: late.status, fast: fastAck?.status, depth: (await one.counts(topic)).depth };
      }),
    );
    for (const { late, fast, depth } of rounds) {
      expect([late, fast].filter((status) => status === 200)).toHaveLength(1);
      expect(depth).toBe(0);
    }
  });

  it('nacks on the other replica: the message comes back at once, or after delay_ms', async () => {
    const topic = freshTopic();
    await one.push(topic, { message: 'retry me' });
    const first = await one.pop(topic, 'worker-a', { visibility_ms: 30_000 });
    const nacked = await two.nack(topic, 'worker-a', first.body.message_id);
    expect(nacked.status).toBe(200);
    expect(nacked.body).toMatchObject({ status: 'nacked', redelivery_in_ms: 0 });
    expect((await one.ack(topic, 'worker-a', first.body.message_id)).status).toBe(409);

    const second = await waitFor(
      async () => {
        const popped = await one.pop(topic, 'worker-b', { visibility_ms: 30_000 });
        return popped.status === 200 ? popped : undefined;
      },
      { timeoutMs: 5_000, description: 'the nacked message' },
    );
    expect(second.body.delivery_count).toBe(2);
    expect((await one.nack(topic, 'worker-b', second.body.message_id, 1_000)).status).toBe(200);
    expect((await two.pop(topic, 'worker-c')).status).toBe(204);
    // the third delivery is past QUEUE_MAX_DELIVER (2): it is dead-lettered, not handed out
  });

  it('dead-letters a message after QUEUE_MAX_DELIVER deliveries', async () => {
    const topic = freshTopic();
    await two.push(topic, { message: 'poison' });
    const pushedOk = await two.push(topic, { message: 'fine' });
    const first = await one.pop(topic, 'worker-a');
    expect(first.body.message).toBe('poison');
    expect((await one.nack(topic, 'worker-a', first.body.message_id)).status).toBe(200);
    const second = await waitFor(
      async () => {
        const popped = await two.pop(topic, 'worker-a');
        return popped.status === 200 && popped.body.sequence === first.body.sequence ? popped : undefined;
      },
      { timeoutMs: 5_000, description: 'the second delivery' },
    );
    // the second delivery may come after the other message: leave that one in flight
    expect((await two.nack(topic, 'worker-a', second.body.message_id)).status).toBe(200);

    const next = await waitFor(
      async () => {
        const popped = await one.pop(topic, 'worker-b', { visibility_ms: 30_000 });
        return popped.status === 200 && popped.body.sequence === pushedOk.body.sequence ? popped : undefined;
      },
      { timeoutMs: 5_000, description: 'the healthy message' },
    );
    const counts = await waitFor(
      async () => {
        const current = await one.counts(topic);
        return current.dead_lettered === 1 ? current : undefined;
      },
      { timeoutMs: 5_000, description: 'one dead letter' },
    );
    expect(counts).toMatchObject({ depth: 1, dead_lettered: 1 });
    const gone = await one.ack(topic, 'worker-a', second.body.message_id);
    expect(gone.status).toBe(410);
    expect(gone.body).toMatchObject({ error: 'ALREADY_ACKED' });
    expect((await two.ack(topic, 'worker-b', next.body.message_id)).status).toBe(200);

    const nc = await connect({ servers: TEST_NATS_URL });
    try {
      const names = queueNames(namespace);
      const jsm = await jetstreamManager(nc);
      const letter = await jsm.streams.getMessage(names.deadLetterStream, {
        last_by_subj: names.deadLetterSubject(topic),
      });
      expect(letter?.header?.get(QueueHeaders.Sequence)).toBe(String(first.body.sequence));
      expect(letter?.header?.get(QueueHeaders.Deliveries)).toBe('2');
      expect(JSON.parse(letter?.string() ?? '{}')).toMatchObject({ message: 'poison' });
    } finally {
      await nc.close();
    }
  });

  it('refuses unknown, malformed, foreign and settled message ids with the documented status', async () => {
    const topic = freshTopic();
    const other = freshTopic();
    const pushed = await one.push(topic, { message: 1 });
    const elsewhere = await one.push(other, { message: 2 });

    const status = async (client: QueueClient, consumer: string, id: string): Promise<[number, unknown]> => {
      const answer = await client.ack(topic, consumer, id);
      return [answer.status, answer.body.error];
    };
    expect(await status(one, 'a', 'not-an-id')).toEqual([400, 'VALIDATION_FAILED']);
    expect(await status(one, 'a', 'v1-0-1')).toEqual([400, 'VALIDATION_FAILED']);
    expect(await status(one, 'a', 'v1-999999999-1')).toEqual([404, 'NOT_FOUND']);
    expect(await status(one, 'a', `v1-${elsewhere.body.sequence}-1`)).toEqual([404, 'NOT_FOUND']);
    expect(await status(one, 'a', `v1-${pushed.body.sequence}-1`)).toEqual([409, 'NOT_LEASE_HOLDER']);
    expect(await status(one, 'a', pushed.body.message_id)).toEqual([409, 'NOT_LEASE_HOLDER']);

    const popped = await two.pop(topic, 'a', { visibility_ms: 30_000 });
    expect(await status(one, 'b', popped.body.message_id)).toEqual([409, 'NOT_LEASE_HOLDER']);
    expect(await status(two, 'a', `v1-${pushed.body.sequence}-2`)).toEqual([409, 'NOT_LEASE_HOLDER']);
    const misrouted = await one.ack(other, 'a', popped.body.message_id);
    expect(misrouted.status).toBe(404);
    expect(await status(one, 'a', popped.body.message_id)).toEqual([200, undefined]);
    expect(await status(two, 'a', popped.body.message_id)).toEqual([410, 'ALREADY_ACKED']);
    expect((await two.nack(topic, 'a', popped.body.message_id)).status).toBe(410);
  });

  it('refuses bad topics, bodies and bounds with 400, and an oversized message with 413', async () => {
    const topic = freshTopic();
    const statusOf = async <T>(answer: Promise<Answer<T>>): Promise<number> => (await answer).status;
    expect(await statusOf(one.push('bad topic', { message: 1 }))).toBe(400);
    expect(await statusOf(one.push('jobs.*', { message: 1 }))).toBe(400);
    expect(await statusOf(one.call('POST', '/queue/push', { topic: 'x'.repeat(256), message: 1 }))).toBe(400);
    expect(await statusOf(one.push('x'.repeat(100), { message: 1 }))).toBe(201);
    expect(await statusOf(one.push('y'.repeat(255), { message: 1 }))).toBe(201);
    expect(await statusOf(one.push(topic, {}))).toBe(400);
    expect(await statusOf(one.push(topic, { message: null }))).toBe(400);
    expect(await statusOf(one.push(topic, { message: 1, extra: true }))).toBe(400);
    expect(await statusOf(one.push(topic, { message: 1, headers: { k: 1 } }))).toBe(400);
    expect(await statusOf(one.push(topic, { message: 1, headers: { 'bad key': 'v' } }))).toBe(400);
    expect(await statusOf(one.push(topic, { message: 'x'.repeat(2_000) }))).toBe(413);
    expect(await statusOf(one.push(topic, { message: 1 }, { 'idempotency-key': 'has space' }))).toBe(400);
    expect(await statusOf(one.call('POST', `/queue/${topic}/pop`, {}))).toBe(400);
    expect(await statusOf(one.pop(topic, ''))).toBe(400);
    expect(await statusOf(one.pop(topic, 'a', { visibility_ms: 50 }))).toBe(400);
    expect(await statusOf(one.pop(topic, 'a', { visibility_ms: 60_001 }))).toBe(400);
    expect(await statusOf(one.pop(topic, 'a', { wait_ms: -1 }))).toBe(400);
    expect(await statusOf(one.nack(topic, 'a', 'v1-1-1', 60_001))).toBe(400);
    expect(await one.counts(topic)).toMatchObject({ depth: 0 });
  });

  it('stores a retried push with the same Idempotency-Key once', async () => {
    const topic = freshTopic();
    const first = await one.push(topic, { message: 'once' }, { 'idempotency-key': 'job-7' });
    const retry = await two.push(topic, { message: 'once' }, { 'idempotency-key': 'job-7' });
    expect(retry.status).toBe(201);
    expect(retry.body).toEqual(first.body);
    expect((await one.counts(topic)).depth).toBe(1);
  });

  it('waits up to wait_ms for a message pushed on another replica', async () => {
    const topic = freshTopic();
    const waiting = one.pop(topic, 'patient', { wait_ms: 10_000 });
    const pushed = await two.push(topic, { message: 'late' });
    const popped = await waiting;
    expect(popped.status).toBe(200);
    expect(popped.body.sequence).toBe(pushed.body.sequence);
    const started = Date.now();
    expect((await one.pop(topic, 'patient', { wait_ms: 1_000 })).status).toBe(204);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('counts depth, waiting, in-flight and redelivered messages of a topic', async () => {
    const topic = freshTopic();
    expect(await one.counts(topic)).toEqual({
      topic,
      depth: 0,
      waiting: 0,
      in_flight: 0,
      redelivered: 0,
      dead_lettered: 0,
    });
    for (let i = 0; i < 3; i++) await one.push(topic, { message: i });
    const popped = await two.pop(topic, 'a', { visibility_ms: 30_000 });
    expect((await two.nack(topic, 'a', popped.body.message_id)).status).toBe(200);
    const again = await waitFor(
      async () => {
        const answer = await two.pop(topic, 'a', { visibility_ms: 30_000 });
        return answer.status === 200 && answer.body.delivery_count === 2 ? answer : undefined;
      },
      { timeoutMs: 5_000, description: 'the redelivery' },
    );
    expect(again.body.sequence).toBe(popped.body.sequence);
    expect(await one.counts(topic)).toMatchObject({ depth: 3, waiting: 2, in_flight: 1, redelivered: 1 });
  });

  it('serves the seed routes: POST /queue/push, GET /queue/pop/:topic/:consumer, POST /queue/ack/:topic', async () => {
    const topic = freshTopic();
    const pushed = await one.call('POST', '/queue/push', { topic, message: 'Kirim email selamat datang' });
    expect(pushed.status).toBe(201);
    const popped = await two.call<QueueDelivery>('GET', `/queue/pop/${topic}/worker-bee`);
    expect(popped.status).toBe(200);
    expect(popped.body).toMatchObject({ message: 'Kirim email selamat datang', consumer_id: 'worker-bee' });
    expect((await two.call('GET', `/queue/pop/${topic}/worker-bee`)).status).toBe(204);
    const acked = await one.call('POST', `/queue/ack/${topic}`, {
      consumer_id: 'worker-bee',
      message_id: popped.body.message_id,
    });
    expect(acked.status).toBe(200);
    expect((await one.call('POST', '/queue/push', { message: 'no topic' })).status).toBe(400);
  });

  it('never turns a topic into a subject token', async () => {
    const topic = 'a/b.c:d-e_f';
    expect((await one.push(topic, { message: 'slashes' })).status).toBe(201);
    const popped = await two.pop(topic, 'a');
    expect(popped.body.topic).toBe(topic);
    const names = queueNames(namespace);
    const nc = await connect({ servers: TEST_NATS_URL });
    try {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.info(names.stream, { subjects_filter: '>' });
      const subjects = Object.keys(info.state.subjects ?? {});
      expect(subjects).toContain(names.subject(topic));
      for (const subject of subjects) {
        expect(subject).toMatch(new RegExp(`^${namespace}\\.queue\\.t\\.[A-Za-z0-9_-]+$`));
      }
      expect(names.topicOf(names.subject(topic))).toBe(topic);
    } finally {
      await nc.close();
    }
  });
});

describe('work queue through a publisher SIGKILL and a NATS restart', () => {
  it('loses no pushed message and redelivers the ones a killed replica had handed out', async () => {
    const nats = await new NatsServerProcess().start();
    const namespace = uniqueName('qfail');
    const schema = uniqueName('qfail');
    const common = {
      NATS_URL: nats.url,
      DATABASE_URL: TEST_DATABASE_URL,
      NATS_NAMESPACE: namespace,
      DB_SCHEMA: schema,
      QUEUE_VISIBILITY_MS: '2000',
    };
    const first = new ServiceProcess('publisher', { ...common, PORT: String(await freePort()) });
    const second = new ServiceProcess('publisher', { ...common, PORT: String(await freePort()) });
    const topic = 'orders.fulfil';
    try {
      await Promise.all([first.start(), second.start()]);
      const [one, two] = [new QueueClient(first), new QueueClient(second)];
      const accepted = new Set<number>();
      const pushMany = async (client: QueueClient, count: number, tag: string): Promise<void> => {
        for (let i = 0; i < count; i++) {
          const answer = await client.push(topic, { message: `${tag}-${i}` }).catch(() => undefined);
          if (answer?.status === 201) accepted.add(answer.body.sequence);
        }
      };
      await Promise.all([pushMany(one, 60, 'one'), pushMany(two, 60, 'two')]);
      expect(accepted.size).toBe(120);
      // handed out by the replica about to die, never acked
      for (let i = 0; i < 10; i++) expect((await one.pop(topic, 'doomed')).status).toBe(200);

      const during = Promise.all([pushMany(one, 200, 'killed'), pushMany(two, 40, 'beside')]);
      await waitFor(() => accepted.size >= 140, { description: 'pushes under way' });
      await first.kill('SIGKILL');
      await during;

      await nats.restart();
      await waitFor(async () => (await two.push(topic, { message: 'after restart' })).status === 201, {
        timeoutMs: 30_000,
        description: 'a push accepted after the NATS restart',
      });
      await first.start();
      await pushMany(one, 20, 'restarted');

      const total = (await two.counts(topic)).depth;
      expect(total).toBeGreaterThanOrEqual(accepted.size);
      const seen = await drain([one, two], topic, total, 60_000);
      for (const sequence of accepted) expect(seen).toContain(sequence);
      expect(await one.counts(topic)).toMatchObject({ depth: 0, in_flight: 0 });
    } finally {
      await Promise.all([first.kill(), second.kill()]);
      await nats.dispose();
      await dropSchema(schema);
    }
  });
});

describe('work queue when JetStream cannot take a message', () => {
  it('answers 503 with Retry-After while NATS is down or the queue stream is full, never 201', async () => {
    const nats = await new NatsServerProcess().start();
    const schema = uniqueName('qdown');
    const config = loadConfig(publisherEnv, {
      ...process.env,
      LOG_LEVEL: 'error',
      NATS_URL: nats.url,
      NATS_NAMESPACE: uniqueName('qdown'),
      DB_SCHEMA: schema,
      QUEUE_MAX_BYTES: '4096',
    });
    const app = await createTestApp(PublisherModule.forRoot(config));
    try {
      const server = app.getHttpServer();
      const push = () =>
        request(server)
          .post('/queue/jobs/messages')
          .send({ message: 'x'.repeat(300) });
      const statuses: number[] = [];
      for (let i = 0; i < 40 && !statuses.includes(503); i++) statuses.push((await push()).status);
      expect(statuses[0]).toBe(201);
      expect(statuses.at(-1)).toBe(503);
      expect(statuses.every((status) => status === 201 || status === 503)).toBe(true);
      const full = await push();
      expect(full.status).toBe(503);
      expect(full.headers['retry-after']).toBeDefined();
      expect((full.body as { message: string }).message).toMatch(/full/);
      expect((await request(server).post('/queue/jobs/pop').send({ consumer_id: 'a' })).status).toBe(200);

      await nats.stop();
      const refused = await waitFor(
        async () => {
          const response = await request(server).post('/queue/other/messages').send({ message: 1 });
          return response.status === 503 ? response : undefined;
        },
        { description: '503 while NATS is down' },
      );
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      expect((await request(server).post('/queue/jobs/pop').send({ consumer_id: 'a' })).status).toBe(503);
      expect((await request(server).get('/queue/jobs')).status).toBe(503);
    } finally {
      await app.close();
      await nats.dispose();
      await dropSchema(schema);
    }
  });
});
