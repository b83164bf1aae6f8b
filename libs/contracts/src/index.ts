export * from './errors.js';
export * from './event.js';
export * from './partition.js';
export * from './subjects.js';
export * from './event.validator.js';
export * from './cache.js';
export * from './chat.js';
export * from './queue.js';
