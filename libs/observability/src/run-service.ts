import { type INestApplication, Logger } from '@nestjs/common';
import { ConfigError } from '@lib/config';

/**
 * Runs a service's `start` and owns the process's life: a start-up failure (bad config, unreachable
 * dependency) exits 1 with a readable message; SIGTERM/SIGINT close the application gracefully (stop
 * intake, finish in-flight work, drain NATS) and force the exit if that takes over `shutdownTimeoutMs`.
 */
export async function runService(
  name: string,
  start: () => Promise<{ app: INestApplication; shutdownTimeoutMs: number }>,
): Promise<void> {
  const logger = new Logger(name);
  let started: { app: INestApplication; shutdownTimeoutMs: number };
  try {
    started = await start();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${name}: ${error.message}\n`);
    } else {
      logger.error(
        `failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
      );
    }
    process.exit(1);
  }
  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) return;
    closing = true;
    logger.log(`${signal} received: shutting down`);
    const force = setTimeout(() => {
      logger.error(`shutdown took over ${started.shutdownTimeoutMs} ms: exiting`);
      process.exit(1);
    }, started.shutdownTimeoutMs);
    started.app
      .close()
      .then(() => {
        clearTimeout(force);
        logger.log('stopped');
        process.exit(0);
      })
      .catch((error: unknown) => {
        logger.error(`shutdown failed: ${String(error)}`);
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
