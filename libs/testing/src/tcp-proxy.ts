import { createServer, type Server, type Socket, connect } from 'node:net';

type ProxyMode = 'open' | 'silent' | 'refused';

interface Pair {
  client: Socket;
  upstream: Socket;
  /** Set once the pair lived through a partition: its streams lost bytes. */
  partitioned: boolean;
}

/**
 * A loopback TCP proxy in front of a server (NATS, Postgres), for tests that cut one client off while
 * the server keeps running for everyone else:
 * - `partition()`: bytes stop flowing both ways but connections stay open, the way a network
 *   partition looks to both ends (nothing notices until a timeout);
 * - `disconnect()`: every connection is closed and new ones are refused (the client notices at once);
 * - `heal()`: new connections pass again; connections that lived through a partition are closed,
 *   since bytes were lost in the middle of them.
 */
export class TcpProxy {
  private server?: Server;
  private mode: ProxyMode = 'open';
  private readonly pairs = new Set<Pair>();
  port = 0;

  constructor(
    private readonly targetPort: number,
    private readonly targetHost = '127.0.0.1',
  ) {}

  /** `nats://127.0.0.1:<port>`-style URL of the proxy for `protocol`. */
  url(protocol: string): string {
    return `${protocol}://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    const server = createServer((client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (typeof address !== 'object' || address === null) throw new Error('proxy has no port');
    this.port = address.port;
    return this;
  }

  partition(): void {
    this.mode = 'silent';
    for (const pair of this.pairs) pair.partitioned = true;
  }

  disconnect(): void {
    this.mode = 'refused';
    for (const pair of this.pairs) this.close(pair);
  }

  heal(): void {
    this.mode = 'open';
    for (const pair of this.pairs) if (pair.partitioned) this.close(pair);
  }

  async dispose(): Promise<void> {
    for (const pair of this.pairs) this.close(pair);
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (this.mode === 'refused') {
      client.destroy();
      return;
    }
    const upstream = connect({ port: this.targetPort, host: this.targetHost });
    const pair: Pair = { client, upstream, partitioned: this.mode === 'silent' };
    this.pairs.add(pair);
    client.on('data', (chunk) => {
      if (!pair.partitioned) upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (!pair.partitioned) client.write(chunk);
    });
    const end = (): void => this.close(pair);
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  }

  private close(pair: Pair): void {
    this.pairs.delete(pair);
    pair.client.destroy();
    pair.upstream.destroy();
  }
}
