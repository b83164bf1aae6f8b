import 'reflect-metadata';

import { loadConfig } from '@lib/config';
import { createHttpApp, listen, runService } from '@lib/observability';

import { publisherEnv } from './publisher.env.js';
import { PublisherModule } from './publisher.module.js';

await runService('publisher', async () => {
  const config = loadConfig(publisherEnv);
  const app = await createHttpApp(PublisherModule.forRoot(config), {
    title: 'publisher',
    description:
      'Event ingress: POST /publish persists events in JetStream; GET /stats and /events read the store; /queue is the at-least-once work queue.',
    bodyLimit: config.BODY_LIMIT_BYTES,
  });
  await listen(app, config.PORT, config.HOST, 'publisher');
  return { app, shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS };
});
