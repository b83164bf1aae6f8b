import { Logger } from '@nestjs/common';
import pg from 'pg';

/**
 * Identifies the listener's server session: a row of `pg_stat_activity` while it lives. Rows that
 * belong to a session (e.g. a waiting request) record it, and anyone can tell the session is gone —
 * its process crashed, was killed or lost the network — from `pg_stat_activity` alone.
 */
export interface ListenerSession {
  pid: number;
  /** `backend_start` as Postgres prints it (microseconds kept, unlike a JavaScript `Date`). */
  startedAt: string;
}

export interface NotificationListenerOptions {
  url: string;
  channel: string;
  /** Name shown in `pg_stat_activity`. */
  applicationName: string;
  /** First and longest delay between reconnection attempts. */
  retryMinMs?: number;
  retryMaxMs?: number;
}

/**
 * A dedicated connection (outside the pool) that `LISTEN`s on one channel and hands every payload to
 * the subscribers. When the connection is lost, `onSessionChange(undefined)` tells the subscribers that
 * notifications may have been missed; it reconnects with backoff, listens again and announces the new
 * session. Notifications sent while no session listened are lost: subscribers recheck what they wait for.
 */
export class PgNotificationListener {
  private readonly logger = new Logger(PgNotificationListener.name);
  private readonly notificationHandlers: ((payload: string) => void)[] = [];
  private readonly sessionHandlers: ((session: ListenerSession | undefined) => void)[] = [];
  private client?: pg.Client;
  private current?: ListenerSession;
  private closed = false;
  private reconnectTimer?: NodeJS.Timeout;

  private constructor(private readonly options: NotificationListenerOptions) {}

  /** Connects and listens; fails when the first connection cannot be made. */
  static async open(options: NotificationListenerOptions): Promise<PgNotificationListener> {
    const listener = new PgNotificationListener(options);
    await listener.connect();
    return listener;
  }

  /** The live session, or undefined while disconnected. */
  get session(): ListenerSession | undefined {
    return this.current;
  }

  onNotification(handler: (payload: string) => void): void {
    this.notificationHandlers.push(handler);
  }

  onSessionChange(handler: (session: ListenerSession | undefined) => void): void {
    this.sessionHandlers.push(handler);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    const client = this.client;
    this.client = undefined;
    this.current = undefined;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.options.url,
      application_name: this.options.applicationName,
      connectionTimeoutMillis: 5_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 5_000,
    });
    client.on('error', () => undefined);
    await client.connect();
    try {
      client.on('notification', (message) => {
        if (message.channel !== this.options.channel) return;
        for (const handler of this.notificationHandlers) handler(message.payload ?? '');
      });
      await client.query(`LISTEN "${this.options.channel}"`);
      const { rows } = await client.query<{ pid: number; started_at: string }>(
        `SELECT pid, backend_start::text AS started_at FROM pg_stat_activity WHERE pid = pg_backend_pid()`,
      );
      this.current = { pid: rows[0].pid, startedAt: rows[0].started_at };
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    this.client = client;
    const lost = (): void => this.lose(client);
    client.removeAllListeners('error');
    client.on('error', lost);
    client.on('end', lost);
    for (const handler of this.sessionHandlers) handler(this.current);
  }

  private lose(client: pg.Client): void {
    if (this.client !== client || this.closed) return;
    this.client = undefined;
    this.current = undefined;
    client.end().catch(() => undefined);
    this.logger.warn(`LISTEN connection lost; reconnecting`);
    for (const handler of this.sessionHandlers) handler(undefined);
    this.scheduleReconnect(1);
  }

  private scheduleReconnect(attempt: number): void {
    const min = this.options.retryMinMs ?? 100;
    const max = this.options.retryMaxMs ?? 5_000;
    const delay = Math.min(max, min * 2 ** (attempt - 1));
    this.reconnectTimer = setTimeout(() => {
      if (this.closed) return;
      this.connect().then(
        () => this.logger.log('LISTEN connection restored'),
        () => this.scheduleReconnect(attempt + 1),
      );
    }, delay);
  }
}
