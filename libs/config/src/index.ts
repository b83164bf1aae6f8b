export * from './common.env.js';
export * from './config.module.js';
export * from './env-spec.js';
export * from './pipeline.env.js';
