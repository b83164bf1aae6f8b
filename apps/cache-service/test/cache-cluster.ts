import {
  dropSchema,
  ServiceProcess,
  startReplicas,
  TEST_DATABASE_URL,
  TEST_NATS_URL,
  uniqueName,
} from '@lib/testing';

/** What `GET /cache/:key` answers. */
export interface CacheDocument {
  key: string;
  value: unknown;
  version: number;
  source: 'memory' | 'database';
}

export interface WriteAnswer {
  key: string;
  version: number;
  ttl_ms: number | null;
  invalidation: { replicas: number; acked: number; lease_waits: number; ms: number };
}

export interface CacheStats {
  coherent: boolean;
  hits: number;
  misses: number;
  evictions: number;
  expirations: number;
  size: number;
  db_reads: number;
  coalesced: number;
  discarded_fills: number;
  invalidations_sent: number;
  invalidations_received: number;
  lease_waits: number;
  sequence_gaps: number;
  resyncs: number;
}

export interface Answer<T> {
  status: number;
  body: T;
}

/** One replica to start: its own variables (e.g. a NATS_URL through a proxy) on top of the cluster's. */
export type ReplicaSpec = Record<string, string>;

/**
 * Cache-service replicas running as real processes from the build output, sharing a fresh schema and
 * NATS namespace: what a user starts with `CACHE_REPLICAS=3 npm start`, isolated from other tests.
 */
export class CacheCluster {
  private constructor(
    readonly replicas: ServiceProcess[],
    readonly namespace: string,
    readonly schema: string,
  ) {}

  static async start(specs: ReplicaSpec[], common: Record<string, string> = {}): Promise<CacheCluster> {
    const namespace = uniqueName('cache');
    const schema = uniqueName('cache');
    const envs = specs.map((spec) => ({
      NATS_URL: TEST_NATS_URL,
      DATABASE_URL: TEST_DATABASE_URL,
      NATS_NAMESPACE: namespace,
      DB_SCHEMA: schema,
      ...common,
      ...spec,
    }));
    try {
      return new CacheCluster(await startReplicas('cache-service', envs), namespace, schema);
    } catch (error) {
      await new CacheCluster([], namespace, schema).dispose();
      throw error;
    }
  }

  replica(index: number): ServiceProcess {
    return this.replicas[index];
  }

  put(index: number, key: string, body: unknown): Promise<Answer<WriteAnswer>> {
    return this.request('PUT', index, `/cache/${key}`, body);
  }

  get(index: number, key: string): Promise<Answer<CacheDocument>> {
    return this.request('GET', index, `/cache/${key}`);
  }

  delete(index: number, key: string): Promise<Answer<WriteAnswer>> {
    return this.request('DELETE', index, `/cache/${key}`);
  }

  async stats(index: number): Promise<CacheStats> {
    const answer = await this.request<CacheStats>('GET', index, '/cache/stats');
    if (answer.status !== 200) throw new Error(`stats answered ${answer.status}`);
    return answer.body;
  }

  async request<T>(method: string, index: number, path: string, body?: unknown): Promise<Answer<T>> {
    const response = await fetch(`${this.replicas[index].url}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: (text === '' ? undefined : JSON.parse(text)) as T };
  }

  /** Kills every replica and drops the schema (core NATS subjects leave nothing behind). */
  async dispose(): Promise<void> {
    await Promise.all(this.replicas.map((replica) => replica.kill()));
    await dropSchema(this.schema, this.replicas[0]?.env.DATABASE_URL);
  }
}
