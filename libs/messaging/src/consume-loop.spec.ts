import { setImmediate as nextMacrotask } from 'node:timers/promises';

import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import {
  AckPolicy,
  type ConsumerInfo,
  DeliverPolicy,
  jetstream,
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
  type JsMsg,
  RetentionPolicy,
} from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Logger } from '@nestjs/common';
import { CleanupStack, deleteStreams, TEST_NATS_URL, uniqueName, waitFor } from '@lib/testing';

import { ConsumeLoop, type ConsumeLoopOptions, type Failure } from './consume-loop.js';

const ACK_WAIT_MS = 2_000;
const CONSUMER = 'worker';

/** One test's stream on the real server: a connection, a stream of its own, and its subject. */
interface StreamFixture {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  stream: string;
  subject: string;
}

/** One `handle` call: the stream sequences and delivery counts of its batch. */
interface HandleCall {
  sequences: number[];
  deliveryCounts: number[];
}

class TransientError extends Error {}
class PoisonError extends Error {}
class RepositionError extends Error {}

const cleanups = new CleanupStack();

beforeEach(() => {
  // the loop warns on every retry, which these tests cause on purpose
  Logger.overrideLogger(['error']);
});

afterEach(() => cleanups.runAll());

/** Connects and creates a stream named after the namespace, deleted (and the connection closed) after the test. */
async function openStream(retention: RetentionPolicy = RetentionPolicy.Limits): Promise<StreamFixture> {
  const namespace = uniqueName('loop');
  const nc = await connect({ servers: TEST_NATS_URL });
  cleanups.defer(() => nc.close());
  cleanups.defer(() => deleteStreams(namespace));
  const jsm = await jetstreamManager(nc);
  const stream = `${namespace.toUpperCase()}_EVENTS`;
  await jsm.streams.add({ name: stream, subjects: [`${namespace}.>`], retention });
  return { nc, js: jetstream(nc), jsm, stream, subject: `${namespace}.events` };
}

/** Adds the durable pull consumer with explicit ack the loop reads from. */
async function addConsumer(fixture: StreamFixture): Promise<void> {
  await fixture.jsm.consumers.add(fixture.stream, {
    durable_name: CONSUMER,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: ACK_WAIT_MS * 1_000_000,
    max_deliver: -1,
  });
}

/** Publishes `count` messages and returns their stream sequences. */
async function publish(fixture: StreamFixture, count: number): Promise<number[]> {
  const sequences: number[] = [];
  for (let i = 0; i < count; i++) {
    const ack = await fixture.js.publish(fixture.subject, JSON.stringify({ i }));
    sequences.push(ack.seq);
  }
  return sequences;
}

function consumerInfo(fixture: StreamFixture): Promise<ConsumerInfo> {
  return fixture.jsm.consumers.info(fixture.stream, CONSUMER);
}

/** Waits until every message of the consumer is acked (or terminated) and nothing is left to deliver. */
function waitUntilAllAcked(fixture: StreamFixture): Promise<ConsumerInfo> {
  return waitFor(
    async () => {
      const info = await consumerInfo(fixture);
      return info.num_ack_pending === 0 && info.num_pending === 0 ? info : undefined;
    },
    { timeoutMs: 10_000, description: 'every message acked' },
  );
}

/**
 * Waits until the server has delivered `count` messages to the loop, then lets the loop move them
 * from its subscription into its buffer (they arrived before the server's answer, so one macrotask
 * turn is enough): called from a blocked first `handle`, it makes the next batches full.
 */
async function waitUntilDelivered(fixture: StreamFixture, count: number): Promise<void> {
  await waitFor(
    async () => {
      const info = await consumerInfo(fixture);
      return info.num_ack_pending >= count;
    },
    { timeoutMs: 10_000, intervalMs: 20, description: `${count} messages delivered` },
  );
  await nextMacrotask();
}

function record(batch: JsMsg[]): HandleCall {
  return {
    sequences: batch.map((message) => message.info.streamSequence),
    deliveryCounts: batch.map((message) => message.info.deliveryCount),
  };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** A promise with its resolver, to hold a `handle` call until the test lets it go. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/** Starts a loop on the fixture's consumer with small timings; stopped after the test. */
function startLoop(fixture: StreamFixture, options: Partial<ConsumeLoopOptions> = {}): ConsumeLoop {
  const loop = new ConsumeLoop({
    name: fixture.stream,
    consumer: () => fixture.js.consumers.get(fixture.stream, CONSUMER),
    maxInFlight: 10,
    maxBatch: 4,
    ackWaitMs: ACK_WAIT_MS,
    ordering: 'strict',
    backoff: { minMs: 10, maxMs: 50 },
    maxAttempts: 3,
    handle: () => Promise.resolve(),
    classify: (): Failure => 'transient',
    deadLetter: () => Promise.resolve(),
    ...options,
  });
  cleanups.defer(() => loop.stop());
  loop.start();
  return loop;
}

/** The sequences of the successful `handle` calls, in order. */
function handledSequences(calls: HandleCall[], failed: Set<HandleCall>): number[] {
  return calls.filter((call) => !failed.has(call)).flatMap((call) => call.sequences);
}

describe(ConsumeLoop.name, () => {
  it('handles messages in order in batches of at most maxBatch and acks them (strict)', async () => {
    const fixture = await openStream();
    await addConsumer(fixture);
    const published = await publish(fixture, 25);
    const calls: HandleCall[] = [];
    const outcomes: [string, number][] = [];

    startLoop(fixture, {
      maxBatch: 4,
      maxInFlight: 10,
      handle: async (batch) => {
        calls.push(record(batch));
        if (calls.length === 1) await waitUntilDelivered(fixture, 10);
      },
      observe: (outcome, messages) => outcomes.push([outcome, messages]),
    });

    await waitFor(() => calls.flatMap((call) => call.sequences).length >= 25, {
      timeoutMs: 10_000,
      description: '25 messages handled',
    });
    const info = await waitUntilAllAcked(fixture);

    expect(calls.flatMap((call) => call.sequences)).toEqual(published);
    for (const call of calls) expect(call.sequences.length).toBeLessThanOrEqual(4);
    expect(calls.some((call) => call.sequences.length === 4)).toBe(true);
    expect(calls.flatMap((call) => call.deliveryCounts).every((count) => count === 1)).toBe(true);
    expect(info.ack_floor.stream_seq).toBe(25);
    expect(outcomes).toEqual(calls.map((call) => ['handled', call.sequences.length]));
  });

  it('retries a failing batch in place, without any later message overtaking it (strict)', async () => {
    const fixture = await openStream();
    await addConsumer(fixture);
    await publish(fixture, 12);
    const calls: HandleCall[] = [];
    const failed = new Set<HandleCall>();
    const outcomes: string[] = [];

    startLoop(fixture, {
      maxBatch: 4,
      maxInFlight: 10,
      handle: async (batch) => {
        const call = record(batch);
        calls.push(call);
        if (calls.length === 1) await waitUntilDelivered(fixture, 10);
        if (call.sequences.includes(5) && failed.size < 2) {
          failed.add(call);
          throw new TransientError('database unavailable');
        }
      },
      classify: (error) => (error instanceof TransientError ? 'transient' : 'poison'),
      observe: (outcome) => outcomes.push(outcome),
    });
    await waitFor(() => handledSequences(calls, failed).length >= 12, {
      timeoutMs: 10_000,
      description: '12 messages handled',
    });
    await waitUntilAllAcked(fixture);

    expect(handledSequences(calls, failed)).toEqual(range(1, 12));
    const failing = calls.findIndex((call) => failed.has(call));
    const retries = calls.slice(failing, failing + 3);
    // the same batch three times: two failures, then the success; nothing else in between
    expect(retries.map((call) => call.sequences)).toEqual(Array(3).fill(calls[failing].sequences));
    expect(failed).toEqual(new Set(retries.slice(0, 2)));
    const highestOfFailing = Math.max(...calls[failing].sequences);
    for (const call of calls.slice(0, failing + 3)) {
      expect(Math.max(...call.sequences)).toBeLessThanOrEqual(highestOfFailing);
    }
    // retried in place: never nak'ed, so never redelivered
    expect(calls.flatMap((call) => call.deliveryCounts).every((count) => count === 1)).toBe(true);
    expect(outcomes.filter((outcome) => outcome === 'retried')).toHaveLength(2);
  });

  it('isolates a poison message from its batch, dead-letters it after maxAttempts, then terminates it', async () => {
    const fixture = await openStream();
    await addConsumer(fixture);
    await publish(fixture, 6);
    const calls: HandleCall[] = [];
    const failed = new Set<HandleCall>();
    const deadLetters: { sequence: number; error: unknown; attempts: number }[] = [];
    const terminations: { sequence: number; term: jest.Spied<JsMsg['term']> }[] = [];
    const outcomes: [string, number][] = [];

    startLoop(fixture, {
      maxBatch: 6,
      maxInFlight: 10,
      maxAttempts: 3,
      handle: async (batch) => {
        const call = record(batch);
        calls.push(call);
        if (calls.length === 1) await waitUntilDelivered(fixture, 6);
        if (call.sequences.includes(3)) {
          failed.add(call);
          throw new PoisonError('cannot decode message 3');
        }
      },
      classify: (error) => (error instanceof PoisonError ? 'poison' : 'transient'),
      deadLetter: (message, error, attempts) => {
        const sequence = message.info.streamSequence;
        deadLetters.push({ sequence, error, attempts });
        // the loop terminates the message once this resolves
        terminations.push({ sequence, term: jest.spyOn(message, 'term') });
        return Promise.resolve();
      },
      observe: (outcome, messages) => outcomes.push([outcome, messages]),
    });
    await waitFor(
      () =>
        terminations.some(({ term }) => term.mock.calls.length > 0) &&
        handledSequences(calls, failed).includes(6),
      {
        timeoutMs: 10_000,
        description: 'the poison message terminated and the others handled',
      },
    );
    // 3 itself may stay pending: nats-server 2.9 ignores a term that carries a reason (reported)
    await waitFor(
      async () => {
        const info = await consumerInfo(fixture);
        return info.num_pending === 0 && info.ack_floor.stream_seq >= 2 && info.num_ack_pending <= 1;
      },
      { timeoutMs: 5_000, description: 'the other messages acked' },
    );

    expect(handledSequences(calls, failed)).toEqual([1, 2, 4, 5, 6]);
    // the batch holding 3 failed whole once, then 3 alone failed maxAttempts times
    const firstWith3 = calls.find((call) => call.sequences.includes(3));
    expect(firstWith3?.sequences.length).toBeGreaterThan(1);
    expect(calls.filter((call) => call.sequences.length === 1 && call.sequences[0] === 3)).toHaveLength(3);
    expect(deadLetters).toEqual([{ sequence: 3, error: expect.any(PoisonError), attempts: 3 }]);
    expect(terminations.map(({ sequence }) => sequence)).toEqual([3]);
    expect(terminations[0].term).toHaveBeenCalledTimes(1);
    // bare: nats-server 2.9 ignores a terminate that carries a reason
    expect(terminations[0].term).toHaveBeenCalledWith();
    expect(outcomes.filter(([outcome]) => outcome === 'dead_lettered')).toEqual([['dead_lettered', 1]]);
    expect(outcomes.filter(([outcome]) => outcome === 'handled').reduce((sum, [, n]) => sum + n, 0)).toBe(5);
  });

  it('naks a transiently failing message with a backoff delay and handles its redelivery (independent)', async () => {
    const fixture = await openStream();
    await addConsumer(fixture);
    await publish(fixture, 5);
    const calls: (HandleCall & { at: number })[] = [];
    const failed = new Set<HandleCall>();
    const outcomes: string[] = [];
    const backoff = { minMs: 200, maxMs: 400 };

    startLoop(fixture, {
      ordering: 'independent',
      maxBatch: 1,
      maxInFlight: 5,
      backoff,
      handle: (batch) => {
        const call = { ...record(batch), at: performance.now() };
        calls.push(call);
        if (call.sequences[0] === 3 && call.deliveryCounts[0] < 3) {
          failed.add(call);
          return Promise.reject(new TransientError('lock timeout'));
        }
        return Promise.resolve();
      },
      classify: (error) => (error instanceof TransientError ? 'transient' : 'poison'),
      observe: (outcome) => outcomes.push(outcome),
    });
    await waitFor(() => handledSequences(calls, failed).length >= 5, {
      timeoutMs: 10_000,
      description: '5 messages handled',
    });
    await waitUntilAllAcked(fixture);

    const attemptsAt3 = calls.filter((call) => call.sequences[0] === 3);
    expect(attemptsAt3.map((call) => call.deliveryCounts[0])).toEqual([1, 2, 3]);
    // nak(delay): each redelivery waits at least half the backoff ceiling of its delivery count
    expect(attemptsAt3[1].at - attemptsAt3[0].at).toBeGreaterThanOrEqual(backoff.minMs / 2 - 10);
    expect(attemptsAt3[2].at - attemptsAt3[1].at).toBeGreaterThanOrEqual(backoff.minMs - 10);
    // the others went on meanwhile, each delivered once
    expect(handledSequences(calls, failed).slice(0, 4)).toEqual([1, 2, 4, 5]);
    expect(handledSequences(calls, failed)[4]).toBe(3);
    const others = calls.filter((call) => call.sequences[0] !== 3);
    expect(others.map((call) => call.deliveryCounts[0])).toEqual([1, 1, 1, 1]);
    expect(outcomes.filter((outcome) => outcome === 'retried')).toHaveLength(2);
  });

  it('calls reposition when a failure is classified reposition, and goes on from the rebuilt consumer (strict)', async () => {
    const fixture = await openStream(RetentionPolicy.Workqueue);
    await addConsumer(fixture);
    await publish(fixture, 8);
    const calls: HandleCall[] = [];
    const failed = new Set<HandleCall>();
    const outcomes: string[] = [];
    let repositions = 0;

    startLoop(fixture, {
      maxBatch: 2,
      maxInFlight: 4,
      handle: (batch) => {
        const call = record(batch);
        calls.push(call);
        if (call.sequences.includes(5) && failed.size === 0) {
          failed.add(call);
          return Promise.reject(new RepositionError('watermark moved'));
        }
        return Promise.resolve();
      },
      classify: (error) => (error instanceof RepositionError ? 'reposition' : 'transient'),
      // like the aggregator: rebuild the consumer, which on a work queue starts at the oldest unacked message
      reposition: async () => {
        repositions += 1;
        await fixture.jsm.consumers.delete(fixture.stream, CONSUMER);
        await addConsumer(fixture);
      },
      observe: (outcome) => outcomes.push(outcome),
    });
    await waitFor(() => handledSequences(calls, failed).includes(8), {
      timeoutMs: 10_000,
      description: 'the last message handled',
    });
    await waitUntilAllAcked(fixture);

    // once at start (strict mode starts from the position of record), once after the failure
    expect(repositions).toBe(2);
    expect(outcomes.filter((outcome) => outcome === 'repositioned')).toHaveLength(1);
    const handled = handledSequences(calls, failed);
    expect([...new Set(handled)]).toEqual(range(1, 8));
    // nothing after the failing batch was handled before it
    const failing = calls.findIndex((call) => failed.has(call));
    for (const call of calls.slice(0, failing)) {
      expect(Math.max(...call.sequences)).toBeLessThan(Math.min(...calls[failing].sequences));
    }
    expect((await fixture.jsm.streams.info(fixture.stream)).state.messages).toBe(0);
  });

  it('finishes and acks the batch in hand on stop, then never calls handle again', async () => {
    const fixture = await openStream();
    await addConsumer(fixture);
    await publish(fixture, 10);
    const calls: HandleCall[] = [];
    const release = gate();
    const entered = gate();
    let stopResolved = false;

    const loop = startLoop(fixture, {
      maxBatch: 3,
      maxInFlight: 6,
      handle: async (batch) => {
        calls.push(record(batch));
        if (calls.length === 1) {
          entered.open();
          await release.opened;
        }
      },
    });
    cleanups.defer(() => Promise.resolve(release.open()));
    await entered.opened;
    const stopped = loop.stop().then(() => (stopResolved = true));
    await fixture.nc.flush();
    expect(stopResolved).toBe(false);
    release.open();
    await stopped;
    const callsAtStop = calls.length;

    expect(callsAtStop).toBe(1);
    const inHand = calls[0].sequences;
    await fixture.nc.flush();
    const info = await waitFor(
      async () => {
        const current = await consumerInfo(fixture);
        return current.ack_floor.stream_seq >= Math.max(...inHand) ? current : undefined;
      },
      { timeoutMs: 5_000, description: 'the batch in hand acked' },
    );
    expect(info.ack_floor.stream_seq).toBe(Math.max(...inHand));
    // nobody pulls any more: a new message stays undelivered, and handle is not called again
    await publish(fixture, 1);
    await waitFor(async () => (await consumerInfo(fixture)).num_pending >= 1, {
      timeoutMs: 5_000,
      description: 'the new message pending',
    });
    expect((await consumerInfo(fixture)).num_pending).toBeGreaterThanOrEqual(1);
    expect(calls).toHaveLength(callsAtStop);
  });

  it('holds at most maxInFlight messages beyond the batch in hand while handle is blocked', async () => {
    const fixture = await openStream();
    await addConsumer(fixture);
    await publish(fixture, 60);
    const maxInFlight = 5;
    const maxBatch = 2;
    const release = gate();
    const entered = gate();

    startLoop(fixture, {
      maxBatch,
      maxInFlight,
      handle: async () => {
        entered.open();
        await release.opened;
      },
    });
    // runs before the loop's stop: a blocked handle would keep stop waiting
    cleanups.defer(() => Promise.resolve(release.open()));
    await entered.opened;

    // the loop has nothing to do but fill its buffer: sample what it holds until that stops changing
    const samples: number[] = [];
    await waitFor(
      async () => {
        samples.push((await consumerInfo(fixture)).num_ack_pending);
        const last = samples.slice(-5);
        return last.length === 5 && last.every((sample) => sample === last[0]);
      },
      { timeoutMs: 10_000, intervalMs: 50, description: 'the buffer settled' },
    );

    expect(samples[samples.length - 1]).toBeGreaterThan(0);
    expect(Math.max(...samples)).toBeLessThanOrEqual(maxInFlight + maxBatch);
  });

  it('terminates a dead-lettered message on the server, so it is never delivered again', async () => {
    const fixture = await openStream();
    await addConsumer(fixture);
    const [poison] = await publish(fixture, 1);
    const deadLettered: number[] = [];
    startLoop(fixture, {
      maxAttempts: 2,
      handle: () => Promise.reject(new PoisonError('cannot be stored')),
      classify: (): Failure => 'poison',
      deadLetter: (message) => Promise.resolve(void deadLettered.push(message.info.streamSequence)),
    });
    await waitUntilAllAcked(fixture);
    // past ack_wait, a message that was not really terminated would come back
    await new Promise((resolve) => setTimeout(resolve, ACK_WAIT_MS + 500));
    expect(deadLettered).toEqual([poison]);
    expect((await consumerInfo(fixture)).num_ack_pending).toBe(0);
  });

  it('dead-letters a poison message after maxAttempts deliveries (independent)', async () => {
    const fixture = await openStream();
    await addConsumer(fixture);
    const [, poison] = await publish(fixture, 3);
    const deadLettered: { sequence: number; attempts: number }[] = [];
    startLoop(fixture, {
      ordering: 'independent',
      maxBatch: 1,
      maxAttempts: 3,
      handle: (batch) =>
        batch[0].info.streamSequence === poison ? Promise.reject(new PoisonError('bad')) : Promise.resolve(),
      classify: (): Failure => 'poison',
      deadLetter: (message, _error, attempts) =>
        Promise.resolve(void deadLettered.push({ sequence: message.info.streamSequence, attempts })),
    });
    await waitFor(() => deadLettered.length > 0, {
      timeoutMs: 10_000,
      description: 'the poison dead-lettered',
    });
    expect(deadLettered).toEqual([{ sequence: poison, attempts: 3 }]);
    await waitUntilAllAcked(fixture);
  });

  it('stops isolating a poison message on stop without handling the messages after it (strict)', async () => {
    const fixture = await openStream();
    await addConsumer(fixture);
    const [poison, ...after] = await publish(fixture, 3);
    const handled: number[] = [];
    const retrying = gate();
    const loop = startLoop(fixture, {
      maxBatch: 3,
      maxAttempts: 1_000,
      handle: (batch) => {
        if (batch.some((message) => message.info.streamSequence === poison)) {
          if (batch.length === 1) retrying.open();
          return Promise.reject(new PoisonError('bad'));
        }
        handled.push(...batch.map((message) => message.info.streamSequence));
        return Promise.resolve();
      },
      classify: (): Failure => 'poison',
    });
    await retrying.opened;
    await loop.stop();
    expect(handled).toEqual([]);
    const info = await consumerInfo(fixture);
    expect(info.ack_floor.stream_seq).toBeLessThan(poison);
    expect(after.length).toBe(2);
  });
});
