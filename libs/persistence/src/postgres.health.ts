import pg from 'pg';
import type { DataSource } from 'typeorm';

/** Health of the database in terminus format: up when `SELECT 1` answers within 1 s. */
export async function checkPostgres(
  dataSource: DataSource,
  key = 'postgres',
): Promise<Record<string, { status: 'up' | 'down' } & Record<string, unknown>>> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      dataSource.query('SELECT 1'),
      new Promise<never>(
        (_, reject) => (timer = setTimeout(() => reject(new Error('no answer within 1 s')), 1_000)),
      ),
    ]);
    return { [key]: { status: 'up', rtt_ms: Math.round((performance.now() - started) * 100) / 100 } };
  } catch (error) {
    return { [key]: { status: 'down', message: String(error) } };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Errors that say nothing about the data: retrying the same statement later can succeed. Only an error
 * the server answered (a `pg` DatabaseError, possibly wrapped by TypeORM) carries an SQLSTATE; anything
 * else (ECONNREFUSED, EPIPE, a lost connection, a timeout) is transient.
 */
export function isTransientDatabaseError(error: unknown): boolean {
  const driverError = (error as { driverError?: unknown }).driverError ?? error;
  if (!(driverError instanceof pg.DatabaseError)) return true;
  const code = driverError.code ?? '';
  return (
    code.startsWith('08') || // connection exception
    code.startsWith('53') || // insufficient resources
    code.startsWith('57') || // operator intervention (shutdown, cancel)
    code.startsWith('58') || // system error
    code === '40001' || // serialization failure
    code === '40P01' || // deadlock detected
    code === '55P03' || // lock not available
    code === '25006' // read-only transaction: a failover in progress
  );
}
