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
  QUEUE_VISIBILITY_MS: env.int(
    30_000,
    'Work queue: how long a popped message stays invisible when the pop names no visibility_ms',
    { min: 100, max: 7 * 24 * 3600 * 1000 },
  ),
  QUEUE_VISIBILITY_MAX_MS: env.int(
    3600 * 1000,
    'Work queue: the largest visibility_ms of a pop and delay_ms of a nack; lease records live this long plus 10 minutes',
    { min: 1_000, max: 7 * 24 * 3600 * 1000 },
  ),
  QUEUE_MAX_DELIVER: env.int(
    5,
    'Work queue: deliveries of a message before it goes to the dead-letter stream',
    { min: 1, max: 1_000 },
  ),
  QUEUE_MAX_BYTES: env.int(
    1024 ** 3,
    'Work queue: largest size of the queue stream; when full, pushes get 503',
    {
      min: 1024,
    },
  ),
  QUEUE_MESSAGE_MAX_BYTES: env.int(
    256 * 1024,
    'Work queue: largest pushed message (message and headers as JSON); larger gets 413',
    { min: 64, max: 8 * 1024 * 1024 },
  ),
  QUEUE_MAX_IN_FLIGHT: env.int(
    10_000,
    'Work queue: messages of one topic popped and not yet acked, at most; beyond it pops get 204',
    { min: 1, max: 1_000_000 },
  ),
};
export type PublisherConfig = ConfigOf<typeof publisherEnv>;
