import type { PipelineStats } from '@lib/contracts';

import { deleteStreams, dropSchema, TEST_DATABASE_URL, TEST_NATS_URL } from './cleanup.js';
import { freePort, uniqueName } from './names.js';
import { ServiceProcess } from './service-process.js';
import { waitFor } from './wait.js';

/**
 * A publisher and an aggregator running as real processes on their own namespace and schema: what a
 * user starts, isolated from every other test.
 */
export class PipelineFixture {
  private constructor(
    readonly publisher: ServiceProcess,
    readonly aggregator: ServiceProcess,
    readonly namespace: string,
    readonly schema: string,
  ) {}

  static async start(env: Record<string, string> = {}, name = 'pipe'): Promise<PipelineFixture> {
    const namespace = uniqueName(name);
    const schema = uniqueName(name);
    const common = {
      NATS_URL: TEST_NATS_URL,
      DATABASE_URL: TEST_DATABASE_URL,
      NATS_NAMESPACE: namespace,
      DB_SCHEMA: schema,
      ...env,
    };
    const aggregator = new ServiceProcess('aggregator', { ...common, PORT: String(await freePort()) });
    const publisher = new ServiceProcess('publisher', { ...common, PORT: String(await freePort()) });
    const fixture = new PipelineFixture(publisher, aggregator, namespace, schema);
    try {
      await aggregator.start();
      await publisher.start();
    } catch (error) {
      await fixture.dispose();
      throw error;
    }
    return fixture;
  }

  async stats(from: ServiceProcess = this.aggregator): Promise<PipelineStats> {
    const response = await fetch(`${from.url}/stats`);
    if (response.status !== 200) throw new Error(`/stats answered ${response.status}`);
    return (await response.json()) as PipelineStats;
  }

  /** Waits until the aggregator has committed `received` events, then returns the stats. */
  waitForReceived(received: number, timeoutMs = 60_000): Promise<PipelineStats> {
    return waitFor(
      async () => {
        const stats = await this.stats();
        if (stats.received > received) throw new Error(`received ${stats.received}, more than ${received}`);
        return stats.received === received ? stats : undefined;
      },
      { timeoutMs, description: `received == ${received}` },
    );
  }

  async post(body: unknown): Promise<{ status: number; body: unknown }> {
    const response = await fetch(`${this.publisher.url}/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: await response.json() };
  }

  /** Kills both services and removes the namespace's streams and the schema, on the servers they used. */
  async dispose(): Promise<void> {
    await Promise.all([this.publisher.kill(), this.aggregator.kill()]);
    await deleteStreams(this.namespace, this.aggregator.env.NATS_URL);
    await dropSchema(this.schema, this.aggregator.env.DATABASE_URL);
  }
}
