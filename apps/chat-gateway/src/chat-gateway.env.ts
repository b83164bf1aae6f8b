import { commonEnv, type ConfigOf, env } from '@lib/config';

export const chatGatewayEnv = {
  ...commonEnv,
  PORT: env.int(3002, 'HTTP and Socket.IO port of the chat gateway', { min: 0, max: 65535 }),
  CHAT_RECOVERY_WINDOW_MS: env.int(
    30_000,
    'How long pubsub messages for a departed node are kept for it to come back and recover them',
    { min: 1_000, max: 3_600_000 },
  ),
  CHAT_METRICS_INTERVAL_MS: env.int(500, 'How often metrics are exchanged and pushed (metrics_update)', {
    min: 100,
    max: 60_000,
  }),
  CHAT_PRESENCE_INTERVAL_MS: env.int(1_000, 'How often a replica announces its nodes to the others', {
    min: 100,
    max: 60_000,
  }),
  CHAT_STREAM_MAX_BYTES: env.int(256 * 1024 * 1024, 'Size limit of the pubsub stream (full: sends refused)', {
    min: 1024 * 1024,
  }),
  CHAT_STREAM_REPLICAS: env.int(1, 'JetStream replicas of the pubsub stream and config bucket', {
    min: 1,
    max: 5,
  }),
  CHAT_PUBLIC_DIR: env.optional('Folder of the dashboard files (default: apps/chat-gateway/public)'),
};
export type ChatGatewayConfig = ConfigOf<typeof chatGatewayEnv>;
