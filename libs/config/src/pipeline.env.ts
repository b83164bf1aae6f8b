import { env } from './env-spec.js';

/** Variables of the event pipeline shared by the publisher and the aggregator (both declare the streams). */
export const pipelineEnv = {
  STREAM_MAX_BYTES: env.int(1024 ** 3, 'Largest size of the events stream; when full, publishes get 503', {
    min: 1024,
  }),
  STREAM_REPLICAS: env.int(1, 'JetStream replicas of each stream (1 or 3 on a cluster)', { min: 1, max: 5 }),
  DUPLICATE_WINDOW_MS: env.int(
    120_000,
    'JetStream de-duplication window for publisher retries (Nats-Msg-Id)',
    {
      min: 1_000,
    },
  ),
};
