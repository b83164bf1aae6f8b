import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';

/** A name unique to this test run, valid as a Postgres schema and a NATS namespace (`t_<prefix>_<hex>`). */
export function uniqueName(prefix: string): string {
  return `t_${prefix
    .replace(/[^a-z0-9]/gi, '')
    .toLowerCase()
    .slice(0, 12)}_${randomBytes(4).toString('hex')}`;
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}
