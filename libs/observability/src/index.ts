export * from './health.js';
export * from './http-app.js';
export * from './http-error.filter.js';
export * from './metrics.js';
export * from './observability.module.js';
export * from './validation.js';
export * from './run-service.js';
export * from './api-key.guard.js';
