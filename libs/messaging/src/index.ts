export * from './backoff.js';
export * from './consume-loop.js';
export * from './messaging.module.js';
export * from './nats-client.js';
export * from './streams.js';
export * from './queue-streams.js';
export * from './namespaced-nats.server.js';
