import { existsSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';

import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { ChatAck, DeliveredMessage } from '@lib/contracts';
import { deleteStreams, freePort, ROOT, ServiceProcess, uniqueName } from '@lib/testing';
import { io, type Socket } from 'socket.io-client';
import { WebSocket, WebSocketServer } from 'ws';

import { type BenchContext, type BenchSection, BenchSkipped, perSecond } from './bench-section.js';

const DIRECT_MESSAGES = 20_000;
/** Unanswered sends at a time, for the gateway and the baseline alike. */
const WINDOW = 200;
const PUBSUB_RATE = 1_000;
const PUBSUB_SECONDS = 5;
const IDLE_SOCKETS = 5_000;
const SOCKET_BATCH = 250;

/**
 * The chat gateway against the rawest way to move the same messages:
 * - direct throughput: node A sends 20,000 direct messages to node B (loss 0, latency 0), 200
 *   unanswered at a time; the figure is messages B received per second. The baseline, in the same run:
 *   a bare `ws` server echoing 20,000 messages to its client with the same window.
 * - pubsub latency: A sends at 1,000 msg/s for 5 s (no simulated loss or latency), B acks each one;
 *   p50/p99 from the send to B's `message`, measured by the client.
 * - memory: gateway RSS growth per idle Socket.IO connection, over 5,000 connections opened in
 *   batches of 250, then all closed.
 */
export const chatSection: BenchSection = {
  name: 'chat',
  description: 'chat-gateway direct throughput vs raw ws echo; pubsub latency at 1k msg/s; memory per socket',
  async run(context) {
    const entry = resolve(ROOT, 'dist/apps/chat-gateway/src/main.js');
    if (!existsSync(entry)) throw new BenchSkipped(`${entry} is missing: run npm run build`);
    const baseline = await measureWsEcho(context);
    const namespace = uniqueName('benchchat');
    const gateway = new ServiceProcess('chat-gateway', {
      NATS_URL: context.natsUrl,
      DATABASE_URL: context.databaseUrl,
      NATS_NAMESPACE: namespace,
      MIGRATE_ON_START: 'false',
      LOG_LEVEL: 'warn',
      PORT: String(await freePort()),
    });
    context.defer(`delete the streams of ${namespace}`, () => deleteChatStreams(context.natsUrl, namespace));
    context.defer('stop the chat gateway', () => gateway.kill('SIGKILL'));
    await gateway.start(60_000);

    const a = await connectNode(gateway.url, 'A');
    const b = await connectNode(gateway.url, 'B');
    context.defer('close the bench sockets', () => {
      a.close();
      b.close();
    });
    await ask(a, 'update_config', {
      loss_rate: 0,
      latency_min_ms: 0,
      latency_max_ms: 0,
      max_retries: 2,
      ack_timeout_ms: 1000,
    });

    const direct = await measureDirect(context, a, b);
    const pubsub = await measurePubsub(context, a, b);
    a.close();
    b.close();
    const memory = await measureIdleSockets(context, gateway);
    return [
      {
        name: 'chat.ws_echo',
        value: baseline,
        unit: 'msg/s',
        note: `raw ws server echoing ${DIRECT_MESSAGES} messages to one client, ${WINDOW} in flight`,
      },
      {
        name: 'chat.direct_throughput',
        value: direct,
        unit: 'msg/s',
        baseline: { name: 'chat.ws_echo', value: baseline },
        targets: [{ op: '>=', value: 0.5, of: 'ratio' }],
        note: `A→B direct, loss 0, latency 0, ${DIRECT_MESSAGES} messages, ${WINDOW} unanswered sends`,
      },
      {
        name: 'chat.pubsub_p50',
        value: pubsub.p50,
        unit: 'ms',
        note: `${PUBSUB_RATE} msg/s for ${PUBSUB_SECONDS} s through JetStream, acked by B; ${pubsub.received}/${pubsub.sent} received`,
      },
      {
        name: 'chat.pubsub_p99',
        value: pubsub.p99,
        unit: 'ms',
        targets: [{ op: '<=', value: 100 }],
      },
      {
        name: 'chat.memory_per_idle_socket',
        value: memory.perSocket,
        unit: 'KiB',
        note: `gateway RSS ${memory.beforeMiB.toFixed(0)} → ${memory.afterMiB.toFixed(0)} MiB with ${memory.sockets} idle sockets`,
      },
    ];
  },
};

async function measureWsEcho(context: BenchContext): Promise<number> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((done) => server.once('listening', done));
  context.defer('close the ws echo server', () => new Promise((done) => server.close(done)));
  server.on('connection', (socket) => socket.on('message', (data) => socket.send(data)));
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
  await new Promise<void>((done, fail) => {
    client.once('open', done);
    client.once('error', fail);
  });
  const run = async (count: number): Promise<number> => {
    let sent = 0;
    let received = 0;
    const started = performance.now();
    await new Promise<void>((done) => {
      const sendOne = (): void => {
        client.send(JSON.stringify({ from: 'A', to: 'B', method: 'direct', content: `m${sent++}` }));
      };
      client.on('message', () => {
        received += 1;
        if (received === count) done();
        else if (sent < count) sendOne();
      });
      for (let i = 0; i < Math.min(WINDOW, count); i++) sendOne();
    });
    client.removeAllListeners('message');
    return perSecond(count, performance.now() - started);
  };
  await run(1_000);
  const rate = await run(DIRECT_MESSAGES);
  client.close();
  context.log(`ws echo: ${Math.round(rate)} msg/s`);
  return rate;
}

async function measureDirect(context: BenchContext, a: Socket, b: Socket): Promise<number> {
  const run = async (count: number): Promise<number> => {
    let received = 0;
    const started = performance.now();
    const allReceived = new Promise<void>((done) => {
      const onMessage = (): void => {
        received += 1;
        if (received === count) {
          b.off('message', onMessage);
          done();
        }
      };
      b.on('message', onMessage);
    });
    let next = 0;
    await Promise.all(
      Array.from({ length: WINDOW }, async () => {
        while (next < count) {
          next += 1;
          await ask(a, 'send_message', { from: 'A', to: 'B', method: 'direct', content: `m${next}` });
        }
      }),
    );
    await allReceived;
    return perSecond(count, performance.now() - started);
  };
  await run(1_000);
  const rate = await run(DIRECT_MESSAGES);
  context.log(`gateway direct: ${Math.round(rate)} msg/s`);
  return rate;
}

async function measurePubsub(
  context: BenchContext,
  a: Socket,
  b: Socket,
): Promise<{ p50: number; p99: number; sent: number; received: number }> {
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  const onMessage = (m: DeliveredMessage): void => {
    const started = sentAt.get(m.content);
    if (m.method === 'pubsub' && started !== undefined) latencies.push(performance.now() - started);
  };
  b.on('message', onMessage);
  const total = PUBSUB_RATE * PUBSUB_SECONDS;
  const started = performance.now();
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1_000) / PUBSUB_RATE;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((done) => setTimeout(done, wait));
    const content = `p${i}`;
    sentAt.set(content, performance.now());
    sends.push(ask(a, 'send_message', { from: 'A', to: 'B', method: 'pubsub', content }));
  }
  await Promise.all(sends);
  const deadline = Date.now() + 30_000;
  while (latencies.length < total && Date.now() < deadline) await new Promise((done) => setTimeout(done, 50));
  b.off('message', onMessage);
  latencies.sort((x, y) => x - y);
  const at = (q: number): number =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  context.log(
    `pubsub: ${latencies.length}/${total} received, p50 ${at(0.5).toFixed(1)} ms, p99 ${at(0.99).toFixed(1)} ms`,
  );
  return { p50: at(0.5), p99: at(0.99), sent: total, received: latencies.length };
}

async function measureIdleSockets(
  context: BenchContext,
  gateway: ServiceProcess,
): Promise<{ perSocket: number; beforeMiB: number; afterMiB: number; sockets: number }> {
  const rss = (): number => {
    const status = readFileSync(`/proc/${gateway.pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  };
  await new Promise((done) => setTimeout(done, 1_000));
  const before = rss();
  const sockets: Socket[] = [];
  context.defer('close the idle sockets', () => sockets.forEach((s) => s.close()));
  for (let opened = 0; opened < IDLE_SOCKETS; opened += SOCKET_BATCH) {
    const batch = Array.from({ length: SOCKET_BATCH }, () =>
      io(gateway.url, { transports: ['websocket'], reconnection: false, forceNew: true }),
    );
    sockets.push(...batch);
    await Promise.all(
      batch.map(
        (socket) =>
          new Promise<void>((done, fail) => {
            socket.once('connect', () => done());
            socket.once('connect_error', fail);
          }),
      ),
    );
  }
  await new Promise((done) => setTimeout(done, 2_000));
  const after = rss();
  context.log(`idle sockets: RSS ${before} → ${after} KiB with ${sockets.length} sockets`);
  for (const socket of sockets.splice(0)) socket.close();
  return {
    perSocket: (after - before) / IDLE_SOCKETS,
    beforeMiB: before / 1024,
    afterMiB: after / 1024,
    sockets: IDLE_SOCKETS,
  };
}

async function connectNode(url: string, node: string): Promise<Socket> {
  const socket = io(url, { transports: ['websocket'], reconnection: false, forceNew: true });
  await new Promise<void>((done, fail) => {
    socket.once('connect', () => done());
    socket.once('connect_error', fail);
  });
  socket.on('pubsub_message', (m: { msg_id: string }) =>
    socket.emit('pubsub_ack', { msg_id: m.msg_id, node }),
  );
  await ask(socket, 'register', { node });
  return socket;
}

async function ask(socket: Socket, event: string, payload: unknown): Promise<ChatAck> {
  const answer = (await socket.timeout(30_000).emitWithAck(event, payload)) as ChatAck;
  if (!answer.ok) throw new Error(`${event} refused: ${JSON.stringify(answer.error)}`);
  return answer;
}

async function deleteChatStreams(natsUrl: string, namespace: string): Promise<void> {
  await deleteStreams(namespace, natsUrl);
  const nc = await connect({ servers: natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(`KV_${namespace.toUpperCase()}_CHAT_CONFIG`).catch(() => undefined);
  } finally {
    await nc.close();
  }
}
