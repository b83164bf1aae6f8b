import { commonEnv, type ConfigOf, env, pipelineEnv } from '@lib/config';

export const publisherEnv = {
  ...commonEnv,
  ...pipelineEnv,
  PORT: env.int(3000, 'HTTP port of the publisher', { min: 0, max: 65535 }),
  PUBLISH_BATCH_LIMIT: env.int(1000, 'Most events accepted in one POST /publish', { min: 1, max: 100_000 }),
  BODY_LIMIT_BYTES: env.int(5 * 1024 * 1024, 'Largest request body in bytes; larger gets 413', { min: 1024 }),
  PUBLISH_TIMEOUT_MS: env.int(
    5_000,
    'How long to wait for JetStream to persist a request before answering 503',
    {
      min: 100,
    },
  ),
};
export type PublisherConfig = ConfigOf<typeof publisherEnv>;
