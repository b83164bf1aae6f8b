import type { HealthIndicatorResult } from '@nestjs/terminus';
import type { NatsClient } from '@lib/messaging';
import type { DataSource } from 'typeorm';

const ANSWER_WITHIN_MS = 1_000;

/** Runs `roundTrip` as a terminus check named `key`: up with its round-trip time, or down with why. */
async function probe(key: string, roundTrip: () => Promise<unknown>): Promise<HealthIndicatorResult> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      roundTrip(),
      new Promise<never>(
        (_, reject) =>
          (timer = setTimeout(
            () => reject(new Error(`no answer within ${ANSWER_WITHIN_MS} ms`)),
            ANSWER_WITHIN_MS,
          )),
      ),
    ]);
    return { [key]: { status: 'up', rtt_ms: Math.round((performance.now() - started) * 100) / 100 } };
  } catch (error) {
    return { [key]: { status: 'down', message: String(error) } };
  } finally {
    clearTimeout(timer);
  }
}

/** NATS is up while the connection is established and the server answers a round trip in time. */
export function checkNats(client: NatsClient): Promise<HealthIndicatorResult> {
  if (!client.isConnected) return Promise.resolve({ nats: { status: 'down', message: 'disconnected' } });
  return probe('nats', () => client.connection.rtt());
}

/** Postgres is up when `SELECT 1` answers in time. */
export function checkPostgres(dataSource: DataSource): Promise<HealthIndicatorResult> {
  return probe('postgres', () => dataSource.query('SELECT 1'));
}
