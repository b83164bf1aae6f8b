import pg from 'pg';

import type { DatabaseOptions } from './data-source.js';

/**
 * One dedicated Postgres connection, outside the pool, for what lives as long as a session: advisory
 * locks held as leases, LISTEN. When the connection dies, for whatever reason, the server has already
 * released everything the session held, so `onLost` is called once and the session is unusable.
 */
export class DatabaseSession {
  private lostError?: Error;
  /** Statements run one after the other: a `pg` client must not be given a query while one runs. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly client: pg.Client,
    private readonly onLost: (error: Error) => void,
  ) {
    client.on('error', (error) => this.lose(error));
    client.on('end', () => this.lose(new Error('the database session ended')));
  }

  /** Opens a session on the schema of `options`; `onLost` hears of its end unless `close` ended it. */
  static async open(
    options: Pick<DatabaseOptions, 'url' | 'schema' | 'applicationName'>,
    onLost: (error: Error) => void,
    queryTimeoutMs = 10_000,
  ): Promise<DatabaseSession> {
    const client = new pg.Client({
      connectionString: options.url,
      application_name: options.applicationName,
      options: `-c search_path=${options.schema}`,
      connectionTimeoutMillis: 5_000,
      // a statement stuck on a half-open connection fails instead of holding the caller forever
      query_timeout: queryTimeoutMs,
      keepAlive: true,
      keepAliveInitialDelayMillis: 5_000,
    });
    // an error before `open` returns is the caller's, through the rejected connect
    client.on('error', () => undefined);
    await client.connect();
    return new DatabaseSession(client, onLost);
  }

  /** False once the connection is gone. */
  get alive(): boolean {
    return this.lostError === undefined;
  }

  query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    const run = async (): Promise<T[]> => {
      if (this.lostError) throw this.lostError;
      const result = await this.client.query(sql, params);
      return result.rows as T[];
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Ends the session: the server releases its locks. Does not call `onLost`. */
  async close(): Promise<void> {
    if (this.lostError) return;
    this.lostError = new Error('the database session was closed');
    await this.client.end().catch(() => undefined);
  }

  private lose(error: Error): void {
    if (this.lostError) return;
    this.lostError = error;
    this.client.end().catch(() => undefined);
    this.onLost(error);
  }
}
