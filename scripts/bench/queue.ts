import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { resolve } from 'node:path';

import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { queueNames } from '@lib/contracts';
import { deleteStreams, dropSchema, freePort, ROOT, ServiceProcess, uniqueName } from '@lib/testing';

import { summarizeLatencies } from '../publish/load.js';
import {
  type BenchContext,
  type BenchSection,
  BenchSkipped,
  perSecond,
  serviceEnv,
} from './bench-section.js';

/** Consumers working at once, each doing push → pop → ack in a loop. */
const CONSUMERS = 16;
/** Triples each consumer does in a measured round (and a fifth of it in the warm-up). */
const TRIPLES_PER_CONSUMER = 100;
/**
 * Measured rounds of each loop, raw and queue alternating so that both see the same machine (its
 * speed drifts within minutes); the medians are compared.
 */
const ROUNDS = 3;
/** Empty pops a consumer tolerates in a row before the round is declared stuck. */
const MAX_EMPTY_POPS = 10_000;
const BODY = JSON.stringify({ task: 'send-email', to: 'someone@example.com', attempt: 1 });
const STOP_TIMEOUT_MS = 15_000;

interface Round {
  triples: number;
  /** Pops answered 204 (another consumer had taken the message pushed just before). */
  emptyPops: number;
  elapsedMs: number;
  latenciesMs: number[];
}

/**
 * The work queue as clients use it: the built publisher as a child process on a fresh namespace, 16
 * consumers each looping push → pop → ack over HTTP on one topic (a consumer may pop another's
 * message: they share the topic). Beside it, in the same run and in alternating rounds, the same loop
 * straight on JetStream: publish to a work-queue stream, one pull request for one message on a durable
 * explicit-ack consumer, ack confirmed by the server — the floor the façade adds its HTTP and its
 * lease compare-and-set to. Medians of three rounds each, after a warm-up of both.
 */
export const queueSection: BenchSection = {
  name: 'queue',
  description: 'work queue push + pop + ack over HTTP beside raw JetStream publish + fetch + ack',
  async run(context) {
    const entry = resolve(ROOT, 'dist/apps/publisher/src/main.js');
    if (!existsSync(entry))
      throw new BenchSkipped(`${entry} is missing: the publisher is not built (npm run build)`);
    const raw = await prepareRaw(context);
    const queue = await prepareQueue(context);
    await raw(Math.ceil(TRIPLES_PER_CONSUMER / 5));
    await queue(Math.ceil(TRIPLES_PER_CONSUMER / 5));
    const rawRounds: Round[] = [];
    const queueRounds: Round[] = [];
    for (let i = 1; i <= ROUNDS; i++) {
      rawRounds.push(await raw(TRIPLES_PER_CONSUMER));
      queueRounds.push(await queue(TRIPLES_PER_CONSUMER));
      context.log(
        `round ${i}: raw ${Math.round(rateOf(rawRounds[i - 1]))}, queue ${Math.round(rateOf(queueRounds[i - 1]))} triples/s`,
      );
    }
    const rawRate = median(rawRounds.map(rateOf));
    const queueRate = median(queueRounds.map(rateOf));
    const rawLatency = summarizeLatencies(rawRounds.flatMap((r) => r.latenciesMs));
    const queueLatency = summarizeLatencies(queueRounds.flatMap((r) => r.latenciesMs));
    const rounds = (list: Round[]): string => list.map((r) => Math.round(rateOf(r))).join(', ');
    const sum = (list: Round[], field: 'triples' | 'emptyPops'): number =>
      list.reduce((n, r) => n + r[field], 0);
    return [
      {
        name: 'queue.raw_jetstream_triples',
        value: rawRate,
        unit: 'triples/s',
        note:
          `median of ${ROUNDS} rounds (${rounds(rawRounds)}) of ${CONSUMERS} loops × ${TRIPLES_PER_CONSUMER} ` +
          `(js.publish, one-message pull request, +ACK confirmed); ${sum(rawRounds, 'emptyPops')} empty pulls`,
      },
      {
        name: 'queue.push_pop_ack',
        value: queueRate,
        unit: 'triples/s',
        baseline: { name: 'queue.raw_jetstream_triples', value: rawRate },
        targets: [{ op: '>=', value: 0.3, of: 'ratio' }],
        note:
          `median of ${ROUNDS} rounds (${rounds(queueRounds)}), alternating with the raw ones, of ${CONSUMERS} ` +
          `consumers × ${TRIPLES_PER_CONSUMER} (POST messages, POST pop, POST ack) on one topic, one publisher; ` +
          `${sum(queueRounds, 'emptyPops')} pops answered 204`,
      },
      { name: 'queue.triple_latency_p50', value: queueLatency.p50, unit: 'ms' },
      {
        name: 'queue.triple_latency_p99',
        value: queueLatency.p99,
        unit: 'ms',
        note: `push → pop → ack of one consumer; raw JetStream p50 / p99 ${rawLatency.p50.toFixed(1)} / ${rawLatency.p99.toFixed(1)} ms`,
      },
    ];
  },
};

function rateOf(round: Round): number {
  return perSecond(round.triples, round.elapsedMs);
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
}

/** A measured round of triples, `perConsumer` per loop. */
type RoundRunner = (perConsumer: number) => Promise<Round>;

/** The raw loop on a fresh work-queue stream and durable consumer; each round checks the stream emptied. */
async function prepareRaw(context: BenchContext): Promise<RoundRunner> {
  const tag = randomBytes(4).toString('hex');
  const stream = `BENCH_QUEUE_${tag}`;
  const subject = `bench_queue_${tag}.jobs`;
  const nc = await connect({ servers: context.natsUrl, name: 'bench-queue' });
  context.defer('close the NATS connection', () => nc.close());
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  await jsm.streams.add({
    name: stream,
    subjects: [subject],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
  });
  context.defer(`delete stream ${stream}`, () => jsm.streams.delete(stream));
  await jsm.consumers.add(stream, {
    durable_name: 'workers',
    ack_policy: AckPolicy.Explicit,
    ack_wait: 30_000_000_000,
    max_deliver: -1,
  });
  const triple = async (): Promise<number> => {
    await js.publish(subject, BODY);
    const { reply, empty } = await pullOne(nc, stream, 'workers');
    await nc.request(reply, '+ACK', { timeout: 5_000 });
    return empty;
  };
  return async (perConsumer) => {
    const round = await runRound(triple, perConsumer);
    const left = (await jsm.streams.info(stream)).state.messages;
    if (left !== 0) throw new Error(`the raw stream still holds ${left} messages`);
    return round;
  };
}

/** The ack subject of the next message, pulled with no-wait requests like the queue does; and the empty answers. */
async function pullOne(
  nc: NatsConnection,
  stream: string,
  consumer: string,
): Promise<{ reply: string; empty: number }> {
  for (let attempt = 0; attempt < MAX_EMPTY_POPS; attempt++) {
    const message = await nc.request(
      `$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`,
      JSON.stringify({ batch: 1, no_wait: true }),
      { timeout: 5_000, noMux: true },
    );
    if (message.reply) return { reply: message.reply, empty: attempt };
  }
  throw new Error('no message to pull');
}

/** The queue loop against a fresh publisher process; each round checks the topic emptied. */
async function prepareQueue(context: BenchContext): Promise<RoundRunner> {
  const namespace = uniqueName('benchq');
  const publisher = new ServiceProcess('publisher', {
    ...serviceEnv(context, namespace),
    PORT: String(await freePort()),
  });
  context.defer(`delete streams of ${namespace}`, async () => {
    await deleteStreams(namespace, context.natsUrl);
    const nc = await connect({ servers: context.natsUrl });
    try {
      await (await jetstreamManager(nc)).streams.delete(queueNames(namespace).leaseStream);
    } finally {
      await nc.close();
    }
  });
  context.defer(`drop schema ${namespace}`, () => dropSchema(namespace, context.databaseUrl));
  context.defer('stop the publisher', () => publisher.stop(STOP_TIMEOUT_MS));
  context.log(`starting the publisher (namespace ${namespace})`);
  await publisher.start(60_000);

  const topic = 'bench.jobs';
  const base = new URL(publisher.url);
  const agent = new Agent({ keepAlive: true, maxSockets: CONSUMERS });
  context.defer('close the HTTP agent', () => agent.destroy());
  const triple = async (loop: number): Promise<number> => {
    const consumerId = `worker-${loop}`;
    await post(agent, base, `/queue/${topic}/messages`, { message: BODY }, 201);
    for (let attempt = 0; attempt < MAX_EMPTY_POPS; attempt++) {
      const popped = await post(agent, base, `/queue/${topic}/pop`, { consumer_id: consumerId }, 200, 204);
      if (popped) {
        const { message_id } = popped as { message_id: string };
        await post(agent, base, `/queue/${topic}/ack`, { consumer_id: consumerId, message_id }, 200);
        return attempt;
      }
    }
    throw new Error('the queue stayed empty');
  };
  return async (perConsumer) => {
    const round = await runRound(triple, perConsumer);
    const counts = (await (await fetch(`${publisher.url}/queue/${topic}`)).json()) as { depth: number };
    if (counts.depth !== 0) throw new Error(`the queue still holds ${counts.depth} messages`);
    return round;
  };
}

/** Runs `CONSUMERS` loops of `perConsumer` triples each; the triples done, the time taken, each one's latency. */
async function runRound(triple: (loop: number) => Promise<number>, perConsumer: number): Promise<Round> {
  const latenciesMs: number[] = [];
  let emptyPops = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONSUMERS }, async (_, loop) => {
      for (let i = 0; i < perConsumer; i++) {
        const begun = performance.now();
        emptyPops += await triple(loop);
        latenciesMs.push(performance.now() - begun);
      }
    }),
  );
  return { triples: CONSUMERS * perConsumer, emptyPops, elapsedMs: performance.now() - started, latenciesMs };
}

/**
 * POSTs JSON over a keep-alive `node:http` agent; the parsed body, or undefined on 204; throws on any
 * status not expected. Not `fetch`: on this machine it costs the client three times the CPU per request,
 * which the publisher would then lack.
 */
function post(agent: Agent, base: URL, path: string, body: unknown, ...expected: number[]): Promise<unknown> {
  const data = JSON.stringify(body);
  return new Promise((resolvePost, reject) => {
    const request = httpRequest(
      {
        host: base.hostname,
        port: base.port,
        path,
        method: 'POST',
        agent,
        timeout: 30_000,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = response.statusCode ?? 0;
          if (!expected.includes(status)) reject(new Error(`POST ${path} answered ${status}: ${text}`));
          else resolvePost(status === 204 ? undefined : (JSON.parse(text) as unknown));
        });
      },
    );
    request.on('timeout', () => request.destroy(new Error(`POST ${path} timed out`)));
    request.on('error', reject);
    request.end(data);
  });
}
