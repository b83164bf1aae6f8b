import { connect } from 'node:net';

/** Where a server listens, as taken from its URL. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** The host and port of `url`, with `defaultPort` when the URL names none. */
export function endpointOf(url: string, defaultPort: number): Endpoint {
  const parsed = new URL(url.trim());
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: parsed.port ? Number(parsed.port) : defaultPort,
  };
}

/** Whether `host` is this machine, where `npm start` may run a server of its own. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** Whether something accepts a TCP connection on `host:port` within `timeoutMs`. */
export function tcpAnswers({ host, port }: Endpoint, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const settle = (answered: boolean): void => {
      socket.destroy();
      resolve(answered);
    };
    socket.setTimeout(timeoutMs, () => settle(false));
    socket.once('connect', () => settle(true));
    socket.once('error', () => settle(false));
  });
}

/** The status `GET url` answers with, or why it did not answer. */
export async function httpStatus(url: string, timeoutMs = 2_000): Promise<number | string> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await response.arrayBuffer();
    return response.status;
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
    return cause instanceof Error ? ('code' in cause && String(cause.code)) || cause.message : String(cause);
  }
}
