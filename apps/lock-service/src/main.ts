import 'reflect-metadata';

import { loadConfig } from '@lib/config';
import { NamespacedNatsServer } from '@lib/messaging';
import { createHttpApp, listen, runService } from '@lib/observability';

import { lockServiceEnv } from './lock-service.env.js';
import { LockServiceModule } from './lock-service.module.js';

await runService('lock-service', async () => {
  const config = loadConfig(lockServiceEnv);
  const app = await createHttpApp(LockServiceModule.forRoot(config), {
    title: 'lock-service',
    description:
      'Distributed locks with fencing tokens, shared/exclusive modes, leases and deadlock detection; ' +
      'state in PostgreSQL, so every replica serves every request.',
    bodyLimit: 64 * 1024,
  });
  app.connectMicroservice({
    strategy: new NamespacedNatsServer({
      servers: config.NATS_URL.split(',').map((url) => url.trim()),
      namespace: config.NATS_NAMESPACE,
      queue: 'lock-service',
      name: 'lock-service-rpc',
      user: config.NATS_USER,
      pass: config.NATS_PASSWORD,
      token: config.NATS_TOKEN,
    }),
  });
  await app.startAllMicroservices();
  await listen(app, config.PORT, config.HOST, 'lock-service');
  return { app, shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS };
});
