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

/** Postgres errors that say nothing about the data: retrying the same statement later can succeed. */
export function isTransientDatabaseError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return true; // connection-level: ECONNREFUSED, timeouts
  return (
    code.startsWith('08') || // connection exception
    code.startsWith('53') || // insufficient resources
    code.startsWith('57') || // operator intervention (shutdown, cancel)
    code.startsWith('58') || // system error
    code === '40001' || // serialization failure
    code === '40P01' || // deadlock detected
    code === '55P03' // lock not available
  );
}
