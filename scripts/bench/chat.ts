import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';

import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { ChatAck, DeliveredMessage } from '@lib/contracts';
import { deleteStreams, freePort, ROOT, ServiceProcess, uniqueName } from '@lib/testing';
import { io, type Socket } from 'socket.io-client';
import { WebSocket } from 'ws';

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
 *
 * A and B speak the Socket.IO protocol over a bare `ws` socket (`RawIoClient`), so the client side
 * costs what the baseline's client costs and the figure compares the servers; socket.io-client spent
 * as much CPU per message as the gateway and was half of what the old figure measured. The CPU time
 * of the gateway and of this process during each run are reported, to show which side saturated.
 */
export const chatSection: BenchSection = {
  name: 'chat',
  description: 'chat-gateway direct throughput vs raw ws echo; pubsub latency at 1k msg/s; memory per socket',
  async run(context) {
    const entry = resolve(ROOT, 'dist/apps/chat-gateway/src/main.js');
    if (!existsSync(entry)) throw new BenchSkipped(`${entry} is missing: run npm run build`);
    const echo = await measureWsEcho(context);
    const baseline = echo.rate;
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

    const a = await RawIoClient.node(gateway.url, 'A');
    const b = await RawIoClient.node(gateway.url, 'B');
    context.defer('close the bench sockets', () => {
      a.close();
      b.close();
    });
    await a.ask('update_config', {
      loss_rate: 0,
      latency_min_ms: 0,
      latency_max_ms: 0,
      max_retries: 2,
      ack_timeout_ms: 1000,
    });

    const direct = await measureDirect(context, a, b, gateway);
    const pubsub = await measurePubsub(context, a, b, gateway);
    a.close();
    b.close();
    const memory = await measureIdleSockets(context, gateway);
    return [
      {
        name: 'chat.ws_echo',
        value: baseline,
        unit: 'msg/s',
        note:
          `raw ws server (own process) echoing ${DIRECT_MESSAGES} messages to one client, ${WINDOW} in flight; ` +
          `CPU per message: server ${echo.cpu.gatewayMicros.toFixed(0)} µs, client ${echo.cpu.clientMicros.toFixed(0)} µs`,
      },
      {
        name: 'chat.direct_throughput',
        value: direct.rate,
        unit: 'msg/s',
        baseline: { name: 'chat.ws_echo', value: baseline },
        targets: [{ op: '>=', value: 0.5, of: 'ratio' }],
        note:
          `A→B direct, loss 0, latency 0, ${DIRECT_MESSAGES} messages, ${WINDOW} unanswered sends; ` +
          `CPU per message: gateway ${direct.cpu.gatewayMicros.toFixed(0)} µs, clients ${direct.cpu.clientMicros.toFixed(0)} µs`,
      },
      {
        name: 'chat.pubsub_p50',
        value: pubsub.p50,
        unit: 'ms',
        note:
          `${PUBSUB_RATE} msg/s for ${PUBSUB_SECONDS} s through JetStream, acked by B; ${pubsub.received}/${pubsub.sent} received; ` +
          `CPU per message: gateway ${pubsub.cpu.gatewayMicros.toFixed(0)} µs, clients ${pubsub.cpu.clientMicros.toFixed(0)} µs`,
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

/**
 * The echo server runs in a child process, like the gateway: in the bench's own process its client
 * and server never waited for each other to be scheduled, which on a loaded machine flattered the
 * baseline several times over against any server in another process.
 */
const ECHO_SERVER = `
const { WebSocketServer } = require('ws');
const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
server.on('listening', () => process.stdout.write(server.address().port + '\\n'));
server.on('connection', (socket) => socket.on('message', (data) => socket.send(data)));
`;

async function measureWsEcho(context: BenchContext): Promise<{ rate: number; cpu: CpuPerMessage }> {
  const child = spawn(process.execPath, ['-e', ECHO_SERVER], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  context.defer('stop the ws echo server', () => child.kill('SIGKILL'));
  const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  const client = new WebSocket(`ws://127.0.0.1:${Number(line)}`);
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
  const cpu = cpuMeter(child.pid!);
  const rate = await run(DIRECT_MESSAGES);
  const perMessage = cpu.perMessage(DIRECT_MESSAGES);
  client.close();
  child.kill('SIGKILL');
  context.log(
    `ws echo: ${Math.round(rate)} msg/s; CPU per message: server ${perMessage.gatewayMicros.toFixed(0)} µs, ` +
      `client ${perMessage.clientMicros.toFixed(0)} µs`,
  );
  return { rate, cpu: perMessage };
}

async function measureDirect(
  context: BenchContext,
  a: RawIoClient,
  b: RawIoClient,
  gateway: ServiceProcess,
): Promise<{ rate: number; cpu: CpuPerMessage }> {
  const run = async (count: number): Promise<number> => {
    let received = 0;
    const started = performance.now();
    const allReceived = new Promise<void>((done) => {
      b.on('message', () => {
        received += 1;
        if (received === count) done();
      });
    });
    let next = 0;
    await Promise.all(
      Array.from({ length: WINDOW }, async () => {
        while (next < count) {
          next += 1;
          await a.ask('send_message', { from: 'A', to: 'B', method: 'direct', content: `m${next}` });
        }
      }),
    );
    await allReceived;
    b.off('message');
    return perSecond(count, performance.now() - started);
  };
  await run(1_000);
  const cpu = cpuMeter(gateway.pid!);
  const rate = await run(DIRECT_MESSAGES);
  const perMessage = cpu.perMessage(DIRECT_MESSAGES);
  context.log(
    `gateway direct: ${Math.round(rate)} msg/s; CPU per message: gateway ${perMessage.gatewayMicros.toFixed(0)} µs, ` +
      `clients ${perMessage.clientMicros.toFixed(0)} µs`,
  );
  return { rate, cpu: perMessage };
}

async function measurePubsub(
  context: BenchContext,
  a: RawIoClient,
  b: RawIoClient,
  gateway: ServiceProcess,
): Promise<{ p50: number; p99: number; sent: number; received: number; cpu: CpuPerMessage }> {
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  b.on('message', (m: DeliveredMessage) => {
    const started = sentAt.get(m.content);
    if (m.method === 'pubsub' && started !== undefined) latencies.push(performance.now() - started);
  });
  const total = PUBSUB_RATE * PUBSUB_SECONDS;
  const cpu = cpuMeter(gateway.pid!);
  const started = performance.now();
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1_000) / PUBSUB_RATE;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((done) => setTimeout(done, wait));
    const content = `p${i}`;
    sentAt.set(content, performance.now());
    sends.push(a.ask('send_message', { from: 'A', to: 'B', method: 'pubsub', content }));
  }
  await Promise.all(sends);
  const deadline = Date.now() + 30_000;
  while (latencies.length < total && Date.now() < deadline) await new Promise((done) => setTimeout(done, 50));
  const perMessage = cpu.perMessage(total);
  b.off('message');
  latencies.sort((x, y) => x - y);
  const at = (q: number): number =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  context.log(
    `pubsub: ${latencies.length}/${total} received, p50 ${at(0.5).toFixed(1)} ms, p99 ${at(0.99).toFixed(1)} ms; ` +
      `CPU per message: gateway ${perMessage.gatewayMicros.toFixed(0)} µs, clients ${perMessage.clientMicros.toFixed(0)} µs`,
  );
  return { p50: at(0.5), p99: at(0.99), sent: total, received: latencies.length, cpu: perMessage };
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

interface CpuPerMessage {
  /** The server's (gateway or echo server) CPU time per message, in µs. */
  gatewayMicros: number;
  clientMicros: number;
}

/** CPU time (user + system) of the server process `pid` and of this one from now on. */
function cpuMeter(pid: number): { perMessage(count: number): CpuPerMessage } {
  // /proc/<pid>/stat fields 14 and 15: utime and stime in clock ticks (100 per second on Linux)
  const gatewayTicks = (): number => {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(fields[11]) + Number(fields[12]);
  };
  const gatewayStart = gatewayTicks();
  const clientStart = process.cpuUsage();
  return {
    perMessage(count) {
      const client = process.cpuUsage(clientStart);
      return {
        gatewayMicros: ((gatewayTicks() - gatewayStart) * 10_000) / count,
        clientMicros: (client.user + client.system) / count,
      };
    },
  };
}

/**
 * A chat node speaking Socket.IO v4 (Engine.IO 4 framing) over a bare `ws` socket: `42["event",…]`
 * events, `42<id>[…]` requests and their `43<id>[…]` answers, `2`/`3` ping-pong. Acks every
 * `pubsub_message` like the dashboard does.
 */
class RawIoClient {
  private nextId = 0;
  private readonly pending = new Map<number, (answer: ChatAck) => void>();
  private readonly handlers = new Map<string, (payload: never) => void>();

  private constructor(
    private readonly socket: WebSocket,
    readonly node: string,
  ) {
    socket.on('message', (data) => this.receive((data as Buffer).toString()));
    this.on('pubsub_message', (m: { msg_id: string }) => this.emit('pubsub_ack', { msg_id: m.msg_id, node }));
  }

  /** Connects to the gateway at `url` and registers `node`. */
  static async node(url: string, node: string): Promise<RawIoClient> {
    const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`);
    await new Promise<void>((done, fail) => {
      socket.once('error', fail);
      socket.on('message', function opened(data) {
        const text = (data as Buffer).toString();
        if (text.startsWith('0')) socket.send('40');
        else if (text.startsWith('40')) {
          socket.off('message', opened);
          socket.off('error', fail);
          done();
        } else if (text.startsWith('44')) fail(new Error(`Socket.IO connect refused: ${text}`));
      });
    });
    const client = new RawIoClient(socket, node);
    await client.ask('register', { node });
    return client;
  }

  on<T>(event: string, handler: (payload: T) => void): void {
    this.handlers.set(event, handler);
  }

  off(event: string): void {
    this.handlers.delete(event);
  }

  emit(event: string, payload: unknown): void {
    this.socket.send(`42${JSON.stringify([event, payload])}`);
  }

  /** Sends a request and resolves with its acknowledgement; throws when the gateway refuses it. */
  async ask(event: string, payload: unknown): Promise<ChatAck> {
    const id = this.nextId++;
    const answer = await new Promise<ChatAck>((resolve) => {
      this.pending.set(id, resolve);
      this.socket.send(`42${id}${JSON.stringify([event, payload])}`);
    });
    if (!answer.ok) throw new Error(`${event} refused: ${JSON.stringify(answer.error)}`);
    return answer;
  }

  close(): void {
    this.socket.close();
  }

  private receive(text: string): void {
    if (text === '2') {
      this.socket.send('3');
      return;
    }
    const body = text.indexOf('[');
    if (body < 0) return;
    if (text.startsWith('43')) {
      const id = Number(text.slice(2, body));
      const resolve = this.pending.get(id);
      this.pending.delete(id);
      resolve?.((JSON.parse(text.slice(body)) as [ChatAck])[0]);
    } else if (text.startsWith('42')) {
      const [event, payload] = JSON.parse(text.slice(body)) as [string, never];
      this.handlers.get(event)?.(payload);
    }
  }
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
