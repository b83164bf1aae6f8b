import { NatsClient } from './nats-client.js';

/** Health of the NATS connection in terminus format: up while connected and the server answers within 1 s. */
export async function checkNats(
  client: NatsClient,
  key = 'nats',
): Promise<Record<string, { status: 'up' | 'down' } & Record<string, unknown>>> {
  if (!client.isConnected) return { [key]: { status: 'down', message: 'disconnected' } };
  let timer: NodeJS.Timeout | undefined;
  try {
    const rtt = await Promise.race([
      client.connection.rtt(),
      new Promise<never>(
        (_, reject) => (timer = setTimeout(() => reject(new Error('no answer within 1 s')), 1_000)),
      ),
    ]);
    return { [key]: { status: 'up', rtt_ms: Math.round(rtt * 100) / 100 } };
  } catch (error) {
    return { [key]: { status: 'down', message: String(error) } };
  } finally {
    clearTimeout(timer);
  }
}
