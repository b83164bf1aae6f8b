import pg from 'pg';

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
