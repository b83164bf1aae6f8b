export * from './data-source.js';
export * from './event-store.repository.js';
export * from './migrate.js';
export * from './persistence.module.js';
export * from './database-errors.js';
export * from './event-query/event-query.controller.js';
export * from './event-query/event-query.module.js';
export * from './event-query/event-query.service.js';
