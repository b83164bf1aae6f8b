import type { PipelineStats } from '@lib/contracts';

import { deleteStreams, dropSchema, TEST_DATABASE_URL, TEST_NATS_URL } from './cleanup.js';
import { freePort, uniqueName } from './names.js';
import { ServiceProcess } from './service-process.js';
import { waitFor } from './wait.js';

export interface PipelineOptions {
  /** Aggregator processes started at once (default 1); more can join later with `addAggregator`. */
  aggregators?: number;
  /** Environment of the n-th aggregator (from 0) on top of the common one, e.g. its `REPLICA_ID`. */
  aggregatorEnv?: (index: number) => Record<string, string>;
}

/**
 * A publisher and one or more aggregators running as real processes on their own namespace and schema:
 * what a user starts, isolated from every other test.
 */
export class PipelineFixture {
  readonly aggregators: ServiceProcess[] = [];
  private added = 0;

  private constructor(
    readonly publisher: ServiceProcess,
    readonly namespace: string,
    readonly schema: string,
    private readonly common: Record<string, string>,
    private readonly options: PipelineOptions,
  ) {}

  static async start(
    env: Record<string, string> = {},
    name = 'pipe',
    options: PipelineOptions = {},
  ): Promise<PipelineFixture> {
    const namespace = uniqueName(name);
    const schema = uniqueName(name);
    const common = {
      NATS_URL: TEST_NATS_URL,
      DATABASE_URL: TEST_DATABASE_URL,
      NATS_NAMESPACE: namespace,
      DB_SCHEMA: schema,
      ...env,
    };
    const publisher = new ServiceProcess('publisher', { ...common, PORT: String(await freePort()) });
    const fixture = new PipelineFixture(publisher, namespace, schema, common, options);
    try {
      // the first process runs the migrations; the others then start together
      await fixture.addAggregator();
      await Promise.all([
        publisher.start(),
        ...Array.from({ length: (options.aggregators ?? 1) - 1 }, () => fixture.addAggregator()),
      ]);
    } catch (error) {
      await fixture.dispose();
      throw error;
    }
    return fixture;
  }

  /** The first aggregator. */
  get aggregator(): ServiceProcess {
    return this.aggregators[0];
  }

  /** Starts one more aggregator replica on the pipeline and waits until it is healthy. */
  async addAggregator(env: Record<string, string> = {}): Promise<ServiceProcess> {
    // the index is taken before the first await: replicas added together get their own
    const index = this.added++;
    const aggregator = new ServiceProcess('aggregator', {
      ...this.common,
      ...this.options.aggregatorEnv?.(index),
      ...env,
      PORT: String(await freePort()),
    });
    this.aggregators.push(aggregator);
    return aggregator.start();
  }

  async stats(from: ServiceProcess = this.aggregator): Promise<PipelineStats> {
    const response = await fetch(`${from.url}/stats`);
    if (response.status !== 200) throw new Error(`/stats answered ${response.status}`);
    return (await response.json()) as PipelineStats;
  }

  /** Waits until the aggregators have committed `received` events, then returns the stats. */
  waitForReceived(
    received: number,
    timeoutMs = 60_000,
    from: ServiceProcess = this.aggregator,
  ): Promise<PipelineStats> {
    return waitFor(
      async () => {
        const stats = await this.stats(from);
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

  /** Output of every process of the pipeline, for the message of a failed test. */
  logs(): string {
    return [this.publisher, ...this.aggregators]
      .map((s) => `--- ${s.app} ${s.env.REPLICA_ID ?? ''} (pid ${s.pid}) ---\n${s.logs()}`)
      .join('\n');
  }

  /** Kills every process and removes the namespace's streams and the schema, on the servers they used. */
  async dispose(): Promise<void> {
    await Promise.all([this.publisher, ...this.aggregators].map((s) => s.kill()));
    await deleteStreams(this.namespace, this.common.NATS_URL);
    await dropSchema(this.schema, this.common.DATABASE_URL);
  }
}
