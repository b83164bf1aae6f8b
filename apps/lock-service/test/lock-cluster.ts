import {
  dropSchema,
  ServiceProcess,
  startReplicas,
  TEST_DATABASE_URL,
  TEST_NATS_URL,
  uniqueName,
  waitFor,
} from '@lib/testing';

/** An answer of the lock service: status and JSON body. */
export interface Answer<T = Record<string, unknown>> {
  status: number;
  body: T;
}

export interface GrantBody {
  resource: string;
  client_id: string;
  mode: string;
  token: number;
  expires_at: string;
}

export interface AuditEntry {
  id: string;
  event: string;
  resource: string;
  client_id: string;
  mode: string | null;
  token: number | null;
  detail: Record<string, unknown> | null;
}

/**
 * Lock-service replicas running as real processes on one schema and NATS namespace of their own: what
 * a user scales out, isolated from every other test.
 */
export class LockCluster {
  private constructor(
    readonly replicas: ServiceProcess[],
    readonly schema: string,
    readonly namespace: string,
  ) {}

  static async start(count: number, env: Record<string, string> = {}): Promise<LockCluster> {
    const schema = uniqueName('locks');
    const common = {
      NATS_URL: TEST_NATS_URL,
      DATABASE_URL: TEST_DATABASE_URL,
      NATS_NAMESPACE: schema,
      DB_SCHEMA: schema,
      ...env,
    };
    try {
      // one runs the migrations, the others wait for it on the migrations' advisory lock
      const replicas = await startReplicas(
        'lock-service',
        Array.from({ length: count }, () => common),
      );
      return new LockCluster(replicas, schema, schema);
    } catch (error) {
      await new LockCluster([], schema, schema).dispose();
      throw error;
    }
  }

  async dispose(): Promise<void> {
    await Promise.all(this.replicas.map((replica) => replica.kill()));
    await dropSchema(this.schema);
  }
}

export async function post<T = Record<string, unknown>>(
  replica: ServiceProcess,
  path: string,
  body: unknown,
  signal?: AbortSignal,
): Promise<Answer<T>> {
  const response = await fetch(`${replica.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  });
  return { status: response.status, body: (await response.json()) as T };
}

export async function get<T = Record<string, unknown>>(
  replica: ServiceProcess,
  path: string,
): Promise<Answer<T>> {
  const response = await fetch(`${replica.url}${path}`);
  return { status: response.status, body: (await response.json()) as T };
}

export function acquire(
  replica: ServiceProcess,
  resource: string,
  body: { client_id: string; mode?: string; ttl_ms?: number; wait_ms?: number },
  signal?: AbortSignal,
): Promise<Answer> {
  return post(replica, `/locks/${resource}/acquire`, body, signal);
}

/** Acquires and expects a grant. */
export async function grant(
  replica: ServiceProcess,
  resource: string,
  body: { client_id: string; mode?: string; ttl_ms?: number; wait_ms?: number },
): Promise<GrantBody> {
  const answer = await acquire(replica, resource, body);
  if (answer.status !== 200) {
    throw new Error(
      `acquire ${resource} by ${body.client_id} answered ${answer.status}: ${JSON.stringify(answer.body)}`,
    );
  }
  return answer.body as unknown as GrantBody;
}

export function release(
  replica: ServiceProcess,
  lock: { resource: string; client_id: string; token: number },
): Promise<Answer> {
  return post(replica, `/locks/${lock.resource}/release`, { client_id: lock.client_id, token: lock.token });
}

export async function auditOf(replica: ServiceProcess, resource: string): Promise<AuditEntry[]> {
  const answer = await get<{ entries: AuditEntry[] }>(
    replica,
    `/locks/audit?resource=${resource}&limit=1000`,
  );
  return answer.body.entries;
}

/** Waits until `count` requests wait for `resource` (seen from `replica`). */
export function waitForWaiters(replica: ServiceProcess, resource: string, count: number): Promise<unknown> {
  return waitFor(
    async () => {
      const { body } = await get<{ waiters: unknown[] }>(replica, `/locks/${resource}`);
      return body.waiters.length === count;
    },
    { timeoutMs: 15_000, intervalMs: 20, description: `${count} waiters on ${resource}` },
  );
}

let counter = 0;
/** A resource or client name unique to this test run. */
export function unique(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}-${Math.random().toString(36).slice(2, 6)}`;
}
