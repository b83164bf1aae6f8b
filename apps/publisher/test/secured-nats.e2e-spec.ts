import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  CleanupStack,
  dropSchema,
  freePort,
  makeEvent,
  NatsServerProcess,
  ROOT,
  ServiceProcess,
  type ServiceName,
  TEST_DATABASE_URL,
  uniqueName,
  waitFor,
} from '@lib/testing';

import { passwordVariable } from '../../../scripts/deploy/nats-config.js';

/**
 * The deployment's NATS configuration (deploy/nats/nats.conf, one user per service) on a real
 * nats-server: every service does its work under its own user without a single permission violation,
 * and a user is refused publishing or subscribing outside its subjects.
 */
describe('NATS permissions of the deployment', () => {
  const users: ServiceName[] = ['publisher', 'aggregator', 'chat-gateway', 'lock-service', 'cache-service'];
  const passwords = Object.fromEntries(
    // starting with a letter: nats-server reads a variable's value like a config value, so "1e3…" is a number
    [...users, 'admin'].map((user) => [passwordVariable(user), `p${randomBytes(12).toString('hex')}`]),
  );
  const cleanups = new CleanupStack();
  const schema = uniqueName('natsperm');
  const nats = new NatsServerProcess({ config: resolve(ROOT, 'deploy/nats/nats.conf'), env: passwords });
  const services = new Map<ServiceName, ServiceProcess>();

  function connectAs(user: string): Promise<NatsConnection> {
    return connect({
      servers: nats.url,
      user,
      pass: passwords[passwordVariable(user)],
      name: `permission-test-${user}`,
      reconnect: false,
    });
  }

  function service(name: ServiceName): ServiceProcess {
    const found = services.get(name);
    if (!found) throw new Error(`${name} is not running`);
    return found;
  }

  async function json(response: Response): Promise<Record<string, unknown>> {
    return (await response.json()) as Record<string, unknown>;
  }

  /** Violations the server logged; the positive tests run before the test's own clients provoke any. */
  function serviceViolations(): string[] {
    return nats
      .logs()
      .split('\n')
      .filter((line) => line.includes('Violation'));
  }

  beforeAll(async () => {
    await nats.start();
    cleanups.defer(() => nats.dispose());
    cleanups.defer(() => dropSchema(schema));
    for (const name of users) {
      const process = new ServiceProcess(name, {
        PORT: String(await freePort()),
        NATS_URL: nats.url,
        NATS_USER: name,
        NATS_PASSWORD: passwords[passwordVariable(name)],
        // the namespace the configuration is written for
        NATS_NAMESPACE: 'toolkit',
        DATABASE_URL: TEST_DATABASE_URL,
        DB_SCHEMA: schema,
      });
      services.set(name, process);
      cleanups.defer(() => process.kill());
      // one after the other: the first runs the migrations
      await process.start(60_000);
    }
  });

  afterAll(() => cleanups.runAll());

  it('lets the event pipeline run under the publisher and aggregator users', async () => {
    const response = await fetch(`${service('publisher').url}/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ events: [makeEvent({ topic: 'perm.a' }), makeEvent({ topic: 'perm.b' })] }),
    });
    expect(response.status).toBe(202);
    await waitFor(
      async () => (await json(await fetch(`${service('aggregator').url}/stats`))).received === 2,
      { description: 'both events committed' },
    );
    expect((await fetch(`${service('aggregator').url}/dead-letters`)).status).toBe(200);
    expect(serviceViolations()).toEqual([]);
  });

  it('lets the work queue push, pop and ack under the publisher user', async () => {
    const base = `${service('publisher').url}/queue/perm.jobs`;
    const post = (path: string, body: unknown): Promise<Response> =>
      fetch(`${base}/${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await post('messages', { message: { n: 1 } })).status).toBe(201);
    const popped = await post('pop', { consumer_id: 'w1' });
    expect(popped.status).toBe(200);
    const { message_id } = await json(popped);
    expect((await post('ack', { consumer_id: 'w1', message_id })).status).toBeLessThan(300);
    expect(serviceViolations()).toEqual([]);
  });

  it('lets the lock service answer over NATS and the cache invalidate under their users', async () => {
    const nc = await connectAs('admin');
    try {
      const reply = await nc.request(
        'toolkit.locks.acquire',
        JSON.stringify({ resource: 'perm-r', client_id: 'c1', mode: 'exclusive', ttl_ms: 5_000, wait_ms: 0 }),
        { timeout: 5_000 },
      );
      expect(reply.json<{ token: number }>().token).toBeGreaterThan(0);
    } finally {
      await nc.close();
    }
    const cache = service('cache-service').url;
    const put = await fetch(`${cache}/cache/perm-key`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ value: 'v1' }),
    });
    expect(put.status).toBeLessThan(300);
    expect((await json(await fetch(`${cache}/cache/perm-key`))).value).toBe('v1');
    expect((await fetch(`${service('chat-gateway').url}/health`)).status).toBe(200);
    expect(serviceViolations()).toEqual([]);
  });

  it.each([
    ['lock-service', 'toolkit.events.p.0'],
    ['cache-service', '$JS.API.STREAM.DELETE.TOOLKIT_EVENTS'],
    ['aggregator', 'toolkit.queue.t.am9icw'],
    ['chat-gateway', 'toolkit.cache.invalidations'],
    ['publisher', '$JS.API.CONSUMER.DELETE.TOOLKIT_EVENTS.aggregator-p0'],
  ])('refuses %s publishing to %s', async (user, subject) => {
    const nc = await connectAs(user);
    try {
      await expect(nc.request(subject, '{}', { timeout: 2_000 })).rejects.toThrow(/Permissions Violation/);
    } finally {
      await nc.close();
    }
  });

  it.each([
    ['publisher', 'toolkit.locks.acquire'],
    ['lock-service', 'toolkit.chat.>'],
  ])('refuses %s subscribing to %s', async (user, subject) => {
    const nc = await connectAs(user);
    try {
      const subscription = nc.subscribe(subject);
      const ended = (async () => {
        for await (const message of subscription) void message;
      })();
      await expect(ended).rejects.toThrow(/Permissions Violation/);
    } finally {
      await nc.close();
    }
  });
});
