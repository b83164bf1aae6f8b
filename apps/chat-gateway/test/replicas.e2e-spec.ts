import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { waitFor } from '@lib/testing';

import { ChatCluster } from './chat-cluster.js';

describe('chat-gateway across two replicas', () => {
  let cluster: ChatCluster;

  beforeAll(async () => {
    cluster = await ChatCluster.start(2);
  });
  afterAll(async () => {
    await cluster?.dispose();
  });

  it('shares config, presence and metrics, and lets nodes on different replicas chat in both modes', async () => {
    const a = await cluster.node('A', 0);
    const b = await cluster.node('B', 1);
    await cluster.waitForNodes(['A', 'B']);
    const nodes = await cluster.http<{ nodes: { node: string; replica: string }[] }>('GET', '/chat/nodes');
    expect(new Set(nodes.body.nodes.map((n) => n.replica)).size).toBe(2);

    expect(
      await a.updateConfig({ loss_rate: 0, latency_min_ms: 0, latency_max_ms: 5, max_retries: 2 }),
    ).toMatchObject({
      ok: true,
    });
    await waitFor(() => b.configs.some((c) => c.latency_max_ms === 5 && c.loss_rate === 0), {
      description: 'config change reaching the client on the other replica',
    });
    expect(
      (await cluster.http<{ loss_rate: number }>('GET', '/chat/config', undefined, 1)).body.loss_rate,
    ).toBe(0);
    await cluster.resetMetrics();

    for (let i = 1; i <= 10; i++) {
      expect((await a.send('B', 'direct', `a-direct-${i}`)).ok).toBe(true);
      expect((await a.send('B', 'pubsub', `a-pubsub-${i}`)).ok).toBe(true);
      expect((await b.send('A', 'direct', `b-direct-${i}`)).ok).toBe(true);
      expect((await b.send('A', 'pubsub', `b-pubsub-${i}`)).ok).toBe(true);
    }
    await b.waitForMessages(20);
    await a.waitForMessages(20);
    const contents = (messages: { content: string }[], prefix: string): string[] =>
      messages.filter((m) => m.content.startsWith(prefix)).map((m) => m.content);
    expect(contents(b.messages, 'a-pubsub')).toEqual(
      Array.from({ length: 10 }, (_, i) => `a-pubsub-${i + 1}`),
    );
    expect(contents(a.messages, 'b-pubsub')).toEqual(
      Array.from({ length: 10 }, (_, i) => `b-pubsub-${i + 1}`),
    );
    expect(contents(b.messages, 'a-direct')).toHaveLength(10);
    expect(contents(a.messages, 'b-direct')).toHaveLength(10);

    // every replica reports the sum of both: sends counted on one, deliveries on the other
    for (const replica of [0, 1]) {
      await waitFor(
        async () => {
          const m = await cluster.metrics(replica);
          return (
            m.replicas === 2 && m.direct.delivered === 20 && m.pubsub.delivered === 20 && m.pubsub.sent === 20
          );
        },
        { timeoutMs: 10_000, description: `aggregated metrics on replica ${replica}` },
      );
    }
    await waitFor(() => (b.latestMetrics()?.pubsub.delivered ?? 0) === 20, {
      description: 'metrics_update at B',
    });
  });

  it('tells a sender on one replica that its pubsub message failed on the other', async () => {
    const a = await cluster.node('FA', 0);
    await cluster.node('FB', 1, { autoAck: false });
    await cluster.waitForNodes(['FA', 'FB']);
    await a.updateConfig({
      loss_rate: 0,
      latency_min_ms: 0,
      latency_max_ms: 0,
      max_retries: 1,
      ack_timeout_ms: 150,
    });
    expect((await a.send('FB', 'pubsub', 'nobody acks')).ok).toBe(true);
    await waitFor(() => a.failures.length === 1, {
      timeoutMs: 10_000,
      description: 'delivery_failed across replicas',
    });
    expect(a.failures[0]).toMatchObject({ recipient: 'FB', attempts: 2 });
  });

  it('recovers on the other replica the messages a node missed', async () => {
    const a = await cluster.node('RA', 0);
    const b = await cluster.node('RB', 0);
    await cluster.waitForNodes(['RA', 'RB']);
    await a.updateConfig({
      loss_rate: 0,
      latency_min_ms: 0,
      latency_max_ms: 0,
      max_retries: 2,
      ack_timeout_ms: 500,
    });
    b.close();
    await waitFor(
      async () =>
        (await cluster.http<{ away: string[] }>('GET', '/chat/nodes', undefined, 1)).body.away.includes('RB'),
      { description: 'RB away on replica 1' },
    );
    for (let i = 1; i <= 3; i++) expect((await a.send('RB', 'pubsub', `while away ${i}`)).ok).toBe(true);
    const back = await cluster.connect(1);
    expect(await back.register('RB')).toMatchObject({ ok: true, recovered: true, missed: 3 });
    await back.waitForMessages(3);
    expect(back.messages.map((m) => m.content)).toEqual(['while away 1', 'while away 2', 'while away 3']);
  });
});
