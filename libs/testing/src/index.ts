export * from './cleanup.js';
export * from './factories.js';
export * from './names.js';
export * from './nats-server.js';
export * from './service-process.js';
export * from './wait.js';
