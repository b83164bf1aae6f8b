import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { Kvm } from '@nats-io/kv';
import { Logger } from '@nestjs/common';
import { loadConfig } from '@lib/config';
import { queueNames, ValidationFailedError } from '@lib/contracts';
import { declareStreams, NatsClient, queueStreamDeclarations } from '@lib/messaging';
import { CleanupStack, deleteStreams, TEST_NATS_URL, uniqueName, waitFor } from '@lib/testing';
import { Registry } from 'prom-client';

import { publisherEnv } from '../publisher.env.js';
import { decodeMessageId, encodeMessageId, isIssuedTo, issueMessageId } from './message-id.js';
import { QueueLeaseStore } from './queue-lease.store.js';
import { QueueService } from './queue.service.js';
import { QueueStream } from './queue-stream.js';

const cleanups = new CleanupStack();

beforeEach(() => {
  // the service warns about the situations these tests provoke on purpose
  Logger.overrideLogger(['error']);
});

afterEach(() => cleanups.runAll());

/** A queue service of its own namespace on the real server, with the lease store it writes. */
async function openQueue(env: Record<string, string> = {}): Promise<{
  queue: QueueService;
  leases: QueueLeaseStore;
  stream: QueueStream;
}> {
  const namespace = uniqueName('queue');
  const config = loadConfig(publisherEnv, { NATS_URL: TEST_NATS_URL, NATS_NAMESPACE: namespace, ...env });
  const nats = await NatsClient.connect({ url: TEST_NATS_URL, name: 'queue-spec' });
  cleanups.defer(() => nats.drain());
  const declarations = queueStreamDeclarations(config);
  // the lease bucket's stream (KV_<NS>_QUEUE_LEASES) goes with the namespace's
  cleanups.defer(() => deleteStreams(namespace));
  await declareStreams(nats.jsm, declarations);
  const names = queueNames(namespace);
  const kv = await new Kvm(nats.js).open(names.leaseBucket, {
    allow_direct: true,
    streamName: names.leaseStream,
  });
  const stream = new QueueStream(config, nats);
  const leases = new QueueLeaseStore(kv, nats, config);
  return { queue: new QueueService(config, stream, leases, new Registry()), leases, stream };
}

describe('message ids', () => {
  it('round-trips the id of a pushed message', () => {
    const ref = { sequence: 9_007_199_254_740, delivery: 0 };
    expect(encodeMessageId(ref)).toBe('v1-9007199254740-0');
    expect(decodeMessageId(encodeMessageId(ref))).toEqual({ ...ref, lease: undefined });
  });

  it('round-trips the id of a popped delivery, bound to its topic and consumer', () => {
    const id = issueMessageId(
      'jobs',
      'worker-a',
      { sequence: 42, delivery: 2 },
      { consumerSequence: 7, revision: 99 },
    );
    expect(id).toMatch(/^v1-42-2-7-99-[\w-]{16}$/);
    const ref = decodeMessageId(id);
    expect(ref).toMatchObject({ sequence: 42, delivery: 2, lease: { consumerSequence: 7, revision: 99 } });
    expect(isIssuedTo(ref, 'jobs', 'worker-a')).toBe(true);
    expect(isIssuedTo(ref, 'jobs', 'worker-b')).toBe(false);
    expect(isIssuedTo(ref, 'other', 'worker-a')).toBe(false);
    expect(isIssuedTo(decodeMessageId(id.replace('-99-', '-98-')), 'jobs', 'worker-a')).toBe(false);
  });

  it.each([
    '',
    '42',
    'v1-42',
    'v1-0-1',
    'v1-01-1',
    'v1-42-01',
    'v2-42-1',
    'v1-42-1 ',
    'v1-42-1-7-99',
    'v1-42-1-7-99-short',
    'v1-99999999999999999-1',
  ])('refuses %j as malformed, naming the field', (id) => {
    expect(() => decodeMessageId(id)).toThrow(ValidationFailedError);
  });
});

describe(QueueService.name, () => {
  it('passes over a redelivery whose holder acked meanwhile, and makes sure the server has the ack', async () => {
    const { queue, leases, stream } = await openQueue();
    await queue.push('jobs', 'one');
    const first = await queue.pop('jobs', 'a', { visibilityMs: 300 });
    if (!first) throw new Error('nothing popped');
    // the holder's ack won its compare-and-set (deleting the lease), and its message to the server was lost
    const record = await leases.read(first.sequence);
    if (!record?.lease) throw new Error('no lease');
    expect(await leases.settle(first.sequence, record.revision)).toBe(true);

    // whoever pops its redelivery never sees it: it is acked on the server instead
    expect(await queue.pop('jobs', 'b', { waitMs: 1_500 })).toBeUndefined();
    await waitFor(async () => (await stream.counts('jobs')).depth === 0, {
      description: 'the message acked',
    });
  });

  it('hides again a redelivery that came before its holder’s visibility ended (a lost nak)', async () => {
    const { queue, leases, stream } = await openQueue({ QUEUE_VISIBILITY_MS: '500' });
    await queue.push('jobs', 'one');
    const first = await queue.pop('jobs', 'a', { visibilityMs: 5_000 });
    if (!first) throw new Error('nothing popped');
    const record = await leases.read(first.sequence);
    if (!record?.lease) throw new Error('no lease');
    // as if the nak that set the 5 s visibility never reached the server: redelivered now
    await stream.settle(record.lease.reply, { verb: 'nak', delayMs: 0 });

    expect(await queue.pop('jobs', 'b')).toBeUndefined();
    expect((await stream.counts('jobs')).inFlight).toBe(1);
    await expect(queue.ack('jobs', 'a', first.message_id)).resolves.toMatchObject({ status: 'acked' });
    expect((await stream.counts('jobs')).depth).toBe(0);
  });

  it('refuses a visibility or a nack delay above QUEUE_VISIBILITY_MAX_MS', async () => {
    const { queue } = await openQueue({ QUEUE_VISIBILITY_MS: '5000', QUEUE_VISIBILITY_MAX_MS: '10000' });
    await expect(queue.pop('jobs', 'a', { visibilityMs: 10_001 })).rejects.toThrow(ValidationFailedError);
    await expect(queue.nack('jobs', 'a', 'v1-1-1', 10_001)).rejects.toThrow(ValidationFailedError);
  });

  it('refuses to start with a default visibility above the largest one', async () => {
    await expect(
      openQueue({ QUEUE_VISIBILITY_MS: '20000', QUEUE_VISIBILITY_MAX_MS: '10000' }),
    ).rejects.toThrow(/QUEUE_VISIBILITY_MS/);
  });
});
