/**
 * The image's HEALTHCHECK: exits 0 when the service in this container answers `GET /health` with 200
 * (NATS and Postgres reachable), 1 otherwise. The port is `PORT`, or else the default port of whichever
 * service answers (a container runs one).
 */
import { APPS } from '../start/apps.js';

const ports = process.env.PORT ? [Number(process.env.PORT)] : APPS.map((app) => app.port);

async function healthy(port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(3_000) });
    return response.status === 200;
  } catch {
    return false;
  }
}

const answers = await Promise.all(ports.map(healthy));
process.exitCode = answers.some(Boolean) ? 0 : 1;
