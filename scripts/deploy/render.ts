/**
 * `npm run deploy:render`: writes the files generated from code — the nats-server configuration, for
 * docker compose (deploy/nats/nats.conf) and for Kubernetes (k8s/nats/nats.conf) — so that the
 * deploy files can never drift from the subjects the services use. A test fails when they are stale.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

import { renderNatsConfig } from './nats-config.js';

export const GENERATED_FILES: Record<string, () => string> = {
  'deploy/nats/nats.conf': () => renderNatsConfig(),
  'k8s/nats/nats.conf': () => renderNatsConfig(),
};

if (process.argv[1]?.endsWith('render.js')) {
  for (const [path, render] of Object.entries(GENERATED_FILES)) {
    const target = resolve(process.cwd(), path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, render());
    process.stdout.write(`wrote ${path}\n`);
  }
}
