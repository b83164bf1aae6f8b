import { afterEach, describe, expect, it } from '@jest/globals';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { messagingNames, partitionOf } from '@lib/contracts';
import {
  makeEvent,
  makeLoad,
  PipelineFixture,
  postBatches,
  queryDatabase,
  TEST_NATS_URL,
  waitFor,
} from '@lib/testing';

interface EventPage {
  events: { seq: string; topic: string; event_id: string; payload: Record<string, unknown> }[];
  next_cursor: string | null;
}

interface DeadLetterPage {
  dead_letters: {
    sequence: number;
    original_subject: string;
    reason: string;
    attempts: number;
    data: string;
  }[];
  total: number;
}

describe('aggregator deduplication', () => {
  let pipeline: PipelineFixture | undefined;

  afterEach(async () => {
    await pipeline?.dispose();
    pipeline = undefined;
  });

  it('counts the same event sent 10 times as received 10, unique 1, duplicate 9', async () => {
    pipeline = await PipelineFixture.start();
    const event = makeEvent({ topic: 'orders' });
    for (let i = 0; i < 10; i++) expect((await pipeline.post(event)).status).toBe(202);
    const stats = await pipeline.waitForReceived(10);
    expect(stats).toMatchObject({
      received: 10,
      unique_processed: 1,
      duplicate_dropped: 9,
      conflicting_duplicates: 0,
    });
    expect(stats.topics).toEqual(['orders']);
  });

  it('stores the same event_id in two topics as two unique events', async () => {
    pipeline = await PipelineFixture.start();
    await pipeline.post([
      makeEvent({ topic: 'a', event_id: 'same' }),
      makeEvent({ topic: 'b', event_id: 'same' }),
    ]);
    const stats = await pipeline.waitForReceived(2);
    expect(stats).toMatchObject({ received: 2, unique_processed: 2, duplicate_dropped: 0 });
  });

  it('stores one row for 50 concurrent posts of one event', async () => {
    pipeline = await PipelineFixture.start();
    const event = makeEvent({ topic: 'race', event_id: 'one' });
    const statuses = await Promise.all(
      Array.from({ length: 50 }, () => pipeline!.post(event).then((r) => r.status)),
    );
    expect(statuses.every((s) => s === 202)).toBe(true);
    const stats = await pipeline.waitForReceived(50);
    expect(stats).toMatchObject({ received: 50, unique_processed: 1, duplicate_dropped: 49 });
    const rows = await queryDatabase<{ n: string }>(`SELECT count(*) AS n FROM "${pipeline.schema}".events`);
    expect(Number(rows[0].n)).toBe(1);
  });

  it('keeps exact counts for 5,000 events with 1,000 duplicates', async () => {
    pipeline = await PipelineFixture.start();
    const load = makeLoad(5_000, { dupRatio: 0.2, topics: 7 });
    const { accepted, statuses } = await postBatches(pipeline.publisher.url, load.events, { batchSize: 250 });
    expect(statuses.every((s) => s === 202)).toBe(true);
    expect(accepted).toBe(5_000);
    const stats = await pipeline.waitForReceived(5_000);
    expect(stats).toMatchObject({ received: 5_000, unique_processed: 4_000, duplicate_dropped: 1_000 });
    expect(stats.received).toBe(stats.unique_processed + stats.duplicate_dropped);
    const rows = await queryDatabase<{ n: string; d: string }>(
      `SELECT count(*) AS n, count(DISTINCT (topic, event_id)) AS d FROM "${pipeline.schema}".events`,
    );
    expect(rows[0]).toEqual({ n: '4000', d: '4000' });
    // every partition reports its lag, and it falls to zero once everything is committed and acked
    await waitFor(async () => {
      const metrics = await (await fetch(`${pipeline!.aggregator.url}/metrics`)).text();
      const lags = [
        ...metrics.matchAll(/^aggregator_partition_lag_messages\{partition="\d+"[^}]*\} (\d+)$/gm),
      ];
      return lags.length === 16 && lags.every((lag) => lag[1] === '0');
    });
  });

  it('drops a duplicate with another payload and counts it as conflicting', async () => {
    pipeline = await PipelineFixture.start();
    const first = makeEvent({ topic: 'keys', event_id: 'k1', payload: { amount: 10 } });
    await pipeline.post(first);
    await pipeline.post({ ...first, payload: { amount: 99 } }); // reused key, other content
    await pipeline.post(first); // honest retry
    await pipeline.post([
      makeEvent({ topic: 'keys', event_id: 'k2', payload: { a: 1 } }),
      makeEvent({ topic: 'keys', event_id: 'k2', payload: { a: 2 } }),
    ]);
    const stats = await pipeline.waitForReceived(5);
    expect(stats).toMatchObject({
      received: 5,
      unique_processed: 2,
      duplicate_dropped: 3,
      conflicting_duplicates: 2,
    });
    const page = (await (await fetch(`${pipeline.aggregator.url}/events?topic=keys`)).json()) as EventPage;
    expect(page.events.map((e) => [e.event_id, e.payload])).toEqual([
      ['k1', { amount: 10 }],
      ['k2', { a: 1 }],
    ]);
  });

  it('lists a topic in ingestion order with cursor pagination, from either service', async () => {
    pipeline = await PipelineFixture.start();
    const events = Array.from({ length: 25 }, (_, i) =>
      makeEvent({ topic: 'paged', event_id: `p${String(i).padStart(2, '0')}` }),
    );
    await pipeline.post({ events });
    await pipeline.waitForReceived(25);
    for (const service of [pipeline.aggregator, pipeline.publisher]) {
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let pages = 0; pages < 10; pages++) {
        const query: string = cursor ? `&cursor=${cursor}` : '';
        const page = (await (
          await fetch(`${service.url}/events?topic=paged&limit=10${query}`)
        ).json()) as EventPage;
        seen.push(...page.events.map((e) => e.event_id));
        cursor = page.next_cursor;
        if (!cursor) break;
      }
      expect(seen).toEqual(events.map((e) => e.event_id));
    }
    expect(await pipeline.stats(pipeline.publisher)).toMatchObject({ received: 25, unique_processed: 25 });
  });
});

describe('aggregator poison messages', () => {
  let pipeline: PipelineFixture | undefined;

  afterEach(async () => {
    await pipeline?.dispose();
    pipeline = undefined;
  });

  it('dead-letters a message that cannot be decoded, keeps its partition flowing, and lists it', async () => {
    pipeline = await PipelineFixture.start({ MAX_DELIVER: '3', RETRY_MIN_MS: '20', RETRY_MAX_MS: '100' });
    const names = messagingNames(pipeline.namespace);
    const partition = partitionOf('poisoned', 16);
    const nc = await connect({ servers: TEST_NATS_URL });
    try {
      await jetstream(nc).publish(names.eventsSubject(partition), 'this is not JSON');
    } finally {
      await nc.close();
    }
    await pipeline.post(makeEvent({ topic: 'poisoned', event_id: 'after-the-poison' }));
    const stats = await pipeline.waitForReceived(1);
    expect(stats).toMatchObject({ unique_processed: 1 });
    const page = await waitFor(async () => {
      const body = (await (await fetch(`${pipeline!.aggregator.url}/dead-letters`)).json()) as DeadLetterPage;
      return body.total === 1 ? body : undefined;
    });
    expect(page.dead_letters[0]).toMatchObject({
      original_subject: names.eventsSubject(partition),
      data: 'this is not JSON',
      attempts: 3,
    });
    expect(page.dead_letters[0].reason).toMatch(/cannot be decoded/);
    expect((await pipeline.stats()).dead_lettered).toBe(1);
  });

  it('dead-letters a well-formed message whose events break the store constraints, without losing its batch', async () => {
    pipeline = await PipelineFixture.start({ MAX_DELIVER: '2', RETRY_MIN_MS: '20', RETRY_MAX_MS: '100' });
    const names = messagingNames(pipeline.namespace);
    const partition = partitionOf('mixed', 16);
    const nc = await connect({ servers: TEST_NATS_URL });
    try {
      const js = jetstream(nc);
      // published around the publisher's validation, as a misconfigured producer could
      await js.publish(
        names.eventsSubject(partition),
        JSON.stringify([makeEvent({ topic: 'mixed', event_id: 'm1' })]),
      );
      await js.publish(
        names.eventsSubject(partition),
        JSON.stringify([{ ...makeEvent(), topic: 'has space' }]),
      );
      await js.publish(
        names.eventsSubject(partition),
        JSON.stringify([makeEvent({ topic: 'mixed', event_id: 'm2' })]),
      );
    } finally {
      await nc.close();
    }
    const stats = await waitFor(async () => {
      const current = await pipeline!.stats();
      return current.dead_lettered === 1 && current.received === 2 ? current : undefined;
    });
    expect(stats).toMatchObject({ unique_processed: 2, duplicate_dropped: 0 });
    const page = (await (await fetch(`${pipeline.aggregator.url}/dead-letters`)).json()) as DeadLetterPage;
    expect(page.dead_letters[0].reason).toMatch(/events_topic_check/);
  });

  it('dead-letters events the database keeps refusing, and replays them once the cause is fixed', async () => {
    pipeline = await PipelineFixture.start({ MAX_DELIVER: '3', RETRY_MIN_MS: '20', RETRY_MAX_MS: '100' });
    const schema = `"${pipeline.schema}"`;
    // a data rule the events break until it is lifted: a non-transient error (SQLSTATE 22023) on every try
    await queryDatabase(`
      CREATE FUNCTION ${schema}.refuse_blocked() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.topic = 'blocked' THEN RAISE EXCEPTION 'topic is blocked' USING ERRCODE = '22023'; END IF;
        RETURN NEW;
      END $$`);
    await queryDatabase(
      `CREATE TRIGGER refuse_blocked BEFORE INSERT ON ${schema}.events FOR EACH ROW EXECUTE FUNCTION ${schema}.refuse_blocked()`,
    );
    await pipeline.post(makeEvent({ topic: 'blocked', event_id: 'b1' }));
    await pipeline.post(makeEvent({ topic: 'open', event_id: 'o1' }));
    const letters = await waitFor(async () => {
      const body = (await (await fetch(`${pipeline!.aggregator.url}/dead-letters`)).json()) as DeadLetterPage;
      return body.total === 1 ? body : undefined;
    });
    expect(letters.dead_letters[0].reason).toMatch(/topic is blocked/);
    await pipeline.waitForReceived(1);

    await queryDatabase(`DROP TRIGGER refuse_blocked ON ${schema}.events`);
    const replay = await fetch(
      `${pipeline.aggregator.url}/dead-letters/${letters.dead_letters[0].sequence}/replay`,
      {
        method: 'POST',
      },
    );
    expect(replay.status).toBe(202);
    const stats = await pipeline.waitForReceived(2);
    expect(stats).toMatchObject({ received: 2, unique_processed: 2, dead_lettered: 1 });
    const after = (await (await fetch(`${pipeline.aggregator.url}/dead-letters`)).json()) as DeadLetterPage;
    expect(after.total).toBe(0);
    const missing = await fetch(`${pipeline.aggregator.url}/dead-letters/999999/replay`, { method: 'POST' });
    expect(missing.status).toBe(404);
  });
});
