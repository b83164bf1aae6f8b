import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChatConfig } from '@lib/contracts';
import { waitFor } from '@lib/testing';

import { ChatCluster } from './chat-cluster.js';

const FAST: Partial<ChatConfig> = { loss_rate: 0, latency_min_ms: 0, latency_max_ms: 5, seed: null };

describe('chat-gateway (one replica)', () => {
  let cluster: ChatCluster;

  beforeAll(async () => {
    cluster = await ChatCluster.start(1);
  });
  afterAll(async () => {
    await cluster?.dispose();
  });
  afterEach(() => cluster.closeClients());

  it('serves the seed events with acknowledgements: register, config, direct and pubsub messages, presence, metrics', async () => {
    const a = await cluster.node('ev-A');
    const b = await cluster.node('ev-B');
    await waitFor(() => a.presence.some((p) => p.joined.includes('ev-B')), { description: 'presence join' });

    const config = await a.updateConfig({ ...FAST, max_retries: 2, ack_timeout_ms: 600 });
    expect(config).toMatchObject({ ok: true, config: { loss_rate: 0, latency_max_ms: 5 } });
    await waitFor(() => b.configs.some((c) => c.latency_max_ms === 5), {
      description: 'config_updated at B',
    });

    const direct = await a.send('ev-B', 'direct', 'hello direct');
    expect(direct).toMatchObject({ ok: true, recipients: ['ev-B'] });
    const pubsub = await a.send('ev-B', 'pubsub', 'hello pubsub');
    expect(pubsub).toMatchObject({ ok: true, seq: 1, recipients: ['ev-B'] });
    await b.waitForMessages(2);
    expect(b.messages.map((m) => [m.method, m.content, m.from])).toEqual(
      expect.arrayContaining([
        ['direct', 'hello direct', 'ev-A'],
        ['pubsub', 'hello pubsub', 'ev-A'],
      ]),
    );
    expect(b.attempts).toEqual([expect.objectContaining({ content: 'hello pubsub', attempt: 1, seq: 1 })]);
    for (const m of b.messages) expect(m.latency_ms).toBeGreaterThanOrEqual(0);

    await waitFor(() => (a.latestMetrics()?.pubsub.delivered ?? 0) >= 1, { description: 'metrics_update' });
    const metrics = a.latestMetrics()!;
    expect(metrics.direct.delivered).toBeGreaterThanOrEqual(1);
    expect(metrics.replicas).toBe(1);
    expect(metrics.pubsub).toEqual(
      expect.objectContaining({
        sent: expect.any(Number),
        p99_latency_ms: expect.any(Number),
        throughput: expect.any(Number),
      }),
    );

    const prom = await (await fetch(`${cluster.url()}/metrics`)).text();
    expect(prom).toMatch(/chat_messages_total\{method="pubsub",outcome="delivered"[^}]*\} [1-9]/);

    b.close();
    await waitFor(() => a.presence.some((p) => p.left.includes('ev-B')), { description: 'presence leave' });
  });

  it('refuses bad requests with a clear error code and field', async () => {
    const anonymous = await cluster.connect();
    expect(await anonymous.send('x', 'direct', 'hi')).toMatchObject({
      ok: false,
      error: { code: 'NOT_REGISTERED' },
    });
    expect(await anonymous.register('bad name!')).toMatchObject({
      ok: false,
      error: { code: 'VALIDATION_FAILED', field: 'node' },
    });
    const a = await cluster.node('bad-A');
    await cluster.node('bad-B');
    expect(await anonymous.register('bad-A')).toMatchObject({ ok: false, error: { code: 'NODE_TAKEN' } });
    expect(await a.send('bad-B', 'carrier-pigeon', 'hi')).toMatchObject({
      ok: false,
      error: { code: 'BAD_METHOD', field: 'method' },
    });
    expect(await a.send('nobody', 'pubsub', 'hi')).toMatchObject({
      ok: false,
      error: { code: 'UNKNOWN_NODE', field: 'to' },
    });
    expect(await a.send('bad-B', 'direct', '')).toMatchObject({
      ok: false,
      error: { code: 'VALIDATION_FAILED', field: 'content' },
    });
    expect(await a.request('pubsub_ack', { msg_id: 'never-sent', node: 'bad-A' })).toMatchObject({
      ok: false,
      error: { code: 'UNKNOWN_MESSAGE' },
    });
  });

  it('refuses an out-of-range config naming the field and changes nothing', async () => {
    const a = await cluster.connect();
    const before = (await a.updateConfig({ loss_rate: 12, latency_min_ms: 20, latency_max_ms: 40 })) as {
      config: ChatConfig;
    };
    const cases: [Record<string, unknown>, string][] = [
      [{ loss_rate: 101 }, 'loss_rate'],
      [{ loss_rate: -1 }, 'loss_rate'],
      [{ latency_min_ms: -5 }, 'latency_min_ms'],
      [{ latency_max_ms: 10 }, 'latency_max_ms'],
      [{ max_retries: -1 }, 'max_retries'],
      [{ max_retries: 1.5 }, 'max_retries'],
      [{ ack_timeout_ms: 99 }, 'ack_timeout_ms'],
      [{ ack_timeout_ms: '600' }, 'ack_timeout_ms'],
      [{ loss_rate: 5, jitter: 3 }, 'jitter'],
    ];
    for (const [update, field] of cases) {
      expect(await a.updateConfig(update)).toMatchObject({
        ok: false,
        error: { code: 'INVALID_CONFIG', field },
      });
    }
    const http = await cluster.http<{ statusCode: number; details: { field: string }[] }>(
      'PUT',
      '/chat/config',
      {
        ack_timeout_ms: 50,
      },
    );
    expect(http.status).toBe(400);
    expect(http.body.details[0].field).toBe('ack_timeout_ms');
    expect((await cluster.http<ChatConfig>('GET', '/chat/config')).body).toEqual(before.config);
    expect(a.configs.at(-1)).toEqual(before.config);
  });

  it('retries a pubsub message max_retries + 1 times in all, then tells the sender delivery_failed', async () => {
    await cluster.node('rt-X').then((x) => x.updateConfig({ ...FAST, max_retries: 2, ack_timeout_ms: 200 }));
    const a = await cluster.node('rt-A');
    const silent = await cluster.node('rt-B', 0, { autoAck: false });
    await cluster.resetMetrics();
    const sent = await a.send('rt-B', 'pubsub', 'never acked');
    expect(sent.ok).toBe(true);
    await waitFor(() => a.failures.length > 0, { timeoutMs: 10_000, description: 'delivery_failed' });
    expect(a.failures).toEqual([
      expect.objectContaining({ from: 'rt-A', recipient: 'rt-B', attempts: 3, reason: 'ack_timeout' }),
    ]);
    expect(silent.attempts.map((m) => m.attempt)).toEqual([1, 2, 3]);
    // the app still saw it once: it arrived, it just was never acknowledged
    expect(silent.messages).toHaveLength(1);
    await waitFor(async () => (await cluster.metrics()).pubsub.failed === 1, {
      description: 'failed counted',
    });
    expect((await cluster.metrics()).pubsub).toMatchObject({ sent: 1, retries: 2, failed: 1, duplicates: 2 });
  });

  it('delivers nothing direct at 100 % loss and counts every message lost', async () => {
    const a = await cluster.node('loss-A');
    const b = await cluster.node('loss-B');
    await a.updateConfig({ ...FAST, loss_rate: 100 });
    await cluster.resetMetrics();
    expect(await a.sendMany('loss-B', 'direct', 200)).toBe(0);
    await waitFor(async () => (await cluster.metrics()).direct.lost === 200, { description: '200 lost' });
    expect((await cluster.metrics()).direct).toMatchObject({ sent: 200, delivered: 0, lost: 200 });
    expect(b.messages).toHaveLength(0);
  });

  it('delivers ≥ 99.9 % of 10,000 pubsub messages at 10 % loss with 3 retries, once each and in order', async () => {
    const a = await cluster.node('bulk-A');
    const b = await cluster.node('bulk-B');
    await a.updateConfig({ ...FAST, loss_rate: 10, max_retries: 3, ack_timeout_ms: 300 });
    await cluster.resetMetrics();
    const total = 10_000;
    expect(await a.sendMany('bulk-B', 'pubsub', total, 100)).toBe(0);
    let seen = {};
    await waitFor(
      async () => {
        const m = (await cluster.metrics()).pubsub;
        seen = m;
        return m.delivered + m.lost >= total;
      },
      { timeoutMs: 60_000, description: 'every pubsub message settled' },
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}; metrics ${JSON.stringify(seen)}; app got ${b.messages.length}`);
    });
    const metrics = (await cluster.metrics()).pubsub;
    expect(metrics.delivered + metrics.lost).toBe(total);
    expect(metrics.delivered / total).toBeGreaterThanOrEqual(0.999);
    expect(metrics.retries).toBeGreaterThan(500);
    const seqs = b.messages.map((m) => m.seq!);
    expect(new Set(b.messages.map((m) => m.msg_id)).size).toBe(b.messages.length);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(b.messages.length).toBe(metrics.delivered);
  });

  it('recovers the pubsub messages a node missed while it was away', async () => {
    const a = await cluster.node('rc-A');
    const b = await cluster.node('rc-B');
    await a.updateConfig({ ...FAST, max_retries: 2, ack_timeout_ms: 600 });
    b.close();
    await waitFor(() => a.presence.some((p) => p.left.includes('rc-B') && p.away.includes('rc-B')), {
      description: 'rc-B away',
    });
    for (let i = 1; i <= 5; i++) expect((await a.send('rc-B', 'pubsub', `missed ${i}`)).ok).toBe(true);
    expect((await a.send('rc-B', 'direct', 'lost while away')).ok).toBe(true);

    const back = await cluster.connect();
    const answer = await back.register('rc-B');
    expect(answer).toMatchObject({ ok: true, recovered: true, missed: 5 });
    await back.waitForMessages(5);
    expect(back.messages.map((m) => [m.content, m.recovered])).toEqual(
      [1, 2, 3, 4, 5].map((i) => [`missed ${i}`, true]),
    );
  });
});
