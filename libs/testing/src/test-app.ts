import type { DynamicModule } from '@nestjs/common';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { configureHttpApp } from '@lib/observability';

/**
 * A service's real module graph in this process, configured like `main.ts` does (filters, pipes, docs,
 * body limit) but without listening: for supertest against real NATS and Postgres.
 */
export async function createTestApp(
  module: DynamicModule,
  bodyLimit = 1024 * 1024,
): Promise<NestFastifyApplication> {
  const moduleRef = await Test.createTestingModule({ imports: [module] }).compile();
  const app = moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter({ bodyLimit }), {
    logger: ['error'],
  });
  configureHttpApp(app, { title: 'test', description: 'test', bodyLimit });
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  return app;
}
