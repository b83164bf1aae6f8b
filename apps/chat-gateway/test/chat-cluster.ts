import type { ChatMetrics } from '@lib/contracts';
import {
  deleteStreams,
  ServiceProcess,
  startReplicas,
  TEST_NATS_URL,
  uniqueName,
  waitFor,
} from '@lib/testing';

import { ChatClient, type ClientOptions } from './chat-client.js';

/**
 * Chat-gateway replicas running as real processes from the build output, on a fresh NATS namespace
 * (their pubsub stream and config bucket are deleted at the end). The gateway keeps no table, so the
 * replicas do not migrate.
 */
export class ChatCluster {
  private readonly clients: ChatClient[] = [];

  private constructor(
    readonly replicas: ServiceProcess[],
    readonly namespace: string,
  ) {}

  static async start(count = 1, env: Record<string, string> = {}): Promise<ChatCluster> {
    const namespace = uniqueName('chat');
    const replicaEnv = {
      NATS_URL: TEST_NATS_URL,
      NATS_NAMESPACE: namespace,
      MIGRATE_ON_START: 'false',
      CHAT_PRESENCE_INTERVAL_MS: '300',
      ...env,
    };
    try {
      const replicas = await startReplicas(
        'chat-gateway',
        Array.from({ length: count }, () => replicaEnv),
      );
      return new ChatCluster(replicas, namespace);
    } catch (error) {
      await new ChatCluster([], namespace).dispose();
      throw error;
    }
  }

  url(replica = 0): string {
    return this.replicas[replica].url;
  }

  /** A registered node on `replica`, closed at dispose. */
  async node(name: string, replica = 0, options: ClientOptions = {}): Promise<ChatClient> {
    const client = await ChatClient.node(this.url(replica), name, options);
    this.clients.push(client);
    return client;
  }

  async connect(replica = 0, options: ClientOptions = {}): Promise<ChatClient> {
    const client = await ChatClient.connect(this.url(replica), options);
    this.clients.push(client);
    return client;
  }

  async http<T>(
    method: string,
    path: string,
    body?: unknown,
    replica = 0,
  ): Promise<{ status: number; body: T }> {
    const response = await fetch(`${this.url(replica)}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: (text === '' ? undefined : JSON.parse(text)) as T };
  }

  async metrics(replica = 0): Promise<ChatMetrics> {
    return (await this.http<ChatMetrics>('GET', '/chat/metrics', undefined, replica)).body;
  }

  /** Zeroes the metrics everywhere and waits until the replica reports zero. */
  async resetMetrics(): Promise<void> {
    await this.http('POST', '/chat/metrics/reset');
    await waitFor(
      async () => {
        const m = await this.metrics();
        return m.direct.sent + m.pubsub.sent + m.direct.delivered + m.pubsub.delivered === 0;
      },
      { timeoutMs: 5_000, description: 'metrics reset' },
    );
  }

  /** Waits until every replica lists `nodes` as registered. */
  async waitForNodes(nodes: string[]): Promise<void> {
    for (let i = 0; i < this.replicas.length; i++) {
      await waitFor(
        async () => {
          const view = (await this.http<{ nodes: { node: string }[] }>('GET', '/chat/nodes', undefined, i))
            .body;
          return nodes.every((n) => view.nodes.some((p) => p.node === n));
        },
        { timeoutMs: 10_000, description: `replica ${i} to list ${nodes.join(', ')}` },
      );
    }
  }

  closeClients(): void {
    for (const client of this.clients.splice(0)) client.close();
  }

  async dispose(): Promise<void> {
    this.closeClients();
    await Promise.all(this.replicas.map((replica) => replica.kill()));
    // the config bucket's stream (KV_<NS>_CHAT_CONFIG) goes with the namespace's
    await deleteStreams(this.namespace);
  }
}
