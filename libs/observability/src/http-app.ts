import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

import { type DynamicModule, type INestApplication, Logger, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Logger as PinoLogger } from 'nestjs-pino';

import { HttpErrorFilter } from './http-error.filter.js';
import { createValidationPipe } from './validation.js';

export interface HttpAppOptions {
  title: string;
  description: string;
  /** Largest request body accepted, in bytes; larger gets 413. */
  bodyLimit: number;
}

/** The request's correlation id: the client's `x-correlation-id` when sane, else a new UUID (logged and echoed). */
function correlationId(req: IncomingMessage): string {
  const header = req.headers['x-correlation-id'];
  const id = typeof header === 'string' && /^[\w.:-]{1,128}$/.test(header) ? header : randomUUID();
  req.headers['x-correlation-id'] = id;
  return id;
}

/**
 * Creates a service's HTTP application the same way for `main.ts`, tests and benchmarks: fastify,
 * pino logs, one error format for every failure (fastify's own, such as a body that is not JSON or too
 * large, reach the same filter through Nest's exception layer),
 * the global validation pipe, Swagger UI at `/docs`, and shutdown hooks.
 */
export async function createHttpApp(
  module: Type<unknown> | DynamicModule,
  options: HttpAppOptions,
): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    bodyLimit: options.bodyLimit,
    genReqId: correlationId,
    // path parameters (topics, keys, resources) may be as long as the contracts allow; fastify's 100 is less
    routerOptions: { maxParamLength: 512 },
  });
  const app = await NestFactory.create<NestFastifyApplication>(module, adapter, { bufferLogs: true });
  app.useLogger(app.get(PinoLogger));
  configureHttpApp(app, options);
  return app;
}

/** The part of `createHttpApp` that applies to an application created elsewhere (e.g. a testing module). */
export function configureHttpApp(app: NestFastifyApplication, options: HttpAppOptions): void {
  app.useGlobalFilters(new HttpErrorFilter());
  app.useGlobalPipes(createValidationPipe());
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle(options.title)
      .setDescription(options.description)
      .setVersion('0.1.0')
      .build(),
  );
  SwaggerModule.setup('docs', app, document);
}

/** Listens and logs the URL; the port and host come from the service's validated config. */
export async function listen(
  app: INestApplication,
  port: number,
  host: string,
  service: string,
): Promise<void> {
  await app.listen(port, host);
  new Logger(service).log(`${service} listening on http://${host}:${port} (docs at /docs)`);
}
