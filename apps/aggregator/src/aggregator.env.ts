import { commonEnv, type ConfigOf, env, pipelineEnv } from '@lib/config';

export const aggregatorEnv = {
  ...commonEnv,
  ...pipelineEnv,
  PORT: env.int(3001, 'HTTP port of the aggregator', { min: 0, max: 65535 }),
  CONSUMER_MAX_IN_FLIGHT: env.int(64, 'Messages pulled ahead per partition (each holds many events)', {
    min: 1,
    max: 10_000,
  }),
  BATCH_MAX_MESSAGES: env.int(32, 'Messages committed in one transaction per partition, at most', {
    min: 1,
    max: 10_000,
  }),
  ACK_WAIT_MS: env.int(30_000, 'JetStream ack wait; held messages are kept alive with working()', {
    min: 1_000,
  }),
  MAX_DELIVER: env.int(5, 'Attempts at a poison message before it goes to the dead-letter stream', {
    min: 1,
    max: 100,
  }),
  REPLICA_ID: env.optional(
    "This replica's id in the consumer group (default host:pid); unique among live replicas",
  ),
  REBALANCE_INTERVAL_MS: env.int(
    1_000,
    'How often a replica reads the members and takes or hands over partitions',
    {
      min: 50,
      max: 60_000,
    },
  ),
  RETRY_MIN_MS: env.int(100, 'First retry delay after a failed batch', { min: 1 }),
  RETRY_MAX_MS: env.int(5_000, 'Longest retry delay after repeated failures', { min: 1 }),
};
export type AggregatorConfig = ConfigOf<typeof aggregatorEnv>;
