import 'reflect-metadata';

import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';

import { IoAdapter } from '@nestjs/platform-socket.io';
import { loadConfig } from '@lib/config';
import { createHttpApp, listen, runService } from '@lib/observability';

import { chatGatewayEnv } from './chat-gateway.env.js';
import { ChatGatewayModule } from './chat-gateway.module.js';
import { coalesceWrites } from './transport/coalesced-writes.js';

/** The dashboard's files: the source folder beside this app (the build holds only compiled code). */
const DEFAULT_PUBLIC_DIR = fileURLToPath(new URL('../../../../apps/chat-gateway/public/', import.meta.url));

await runService('chat-gateway', async () => {
  const config = loadConfig(chatGatewayEnv);
  const app = await createHttpApp(ChatGatewayModule.forRoot(config), {
    title: 'chat-gateway',
    description:
      'Real-time chat simulation: direct (at most once) vs pubsub (acknowledged, retried, through JetStream) under simulated loss and latency; dashboard at /.',
    bodyLimit: 64 * 1024,
  });
  app.useWebSocketAdapter(new IoAdapter(app));
  // every WebSocket connection (Socket.IO upgrades it from the HTTP server) writes a tick's frames at once
  app.getHttpServer().prependListener('upgrade', (_request, socket: Duplex) => coalesceWrites(socket));
  app.useStaticAssets({ root: config.CHAT_PUBLIC_DIR ?? DEFAULT_PUBLIC_DIR, prefix: '/' });
  app.useStaticAssets({
    root: dirname(createRequire(import.meta.url).resolve('chart.js')),
    prefix: '/vendor/chart.js/',
    decorateReply: false,
  });
  await listen(app, config.PORT, config.HOST, 'chat-gateway');
  return { app, shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS };
});
