import 'reflect-metadata';

import { loadConfig } from '@lib/config';
import { createHttpApp, listen, runService } from '@lib/observability';

import { aggregatorEnv } from './aggregator.env.js';
import { AggregatorModule } from './aggregator.module.js';

await runService('aggregator', async () => {
  const config = loadConfig(aggregatorEnv);
  const app = await createHttpApp(AggregatorModule.forRoot(config), {
    title: 'aggregator',
    description: 'Consumes the events stream, stores each (topic, event_id) once, serves exact counters.',
    bodyLimit: 1024 * 1024,
  });
  await listen(app, config.PORT, config.HOST, 'aggregator');
  return { app, shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS };
});
