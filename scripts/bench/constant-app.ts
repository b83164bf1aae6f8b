/**
 * The HTTP baseline of the service benchmarks: a NestJS app on the product's HTTP stack
 * (`createHttpApp`: fastify, pino, the error filter, the validation pipe, the API-key guard) whose one
 * route answers a constant. Run as its own process (`PORT`, `BODY`), like the service it is compared
 * with, so the load generator never shares its event loop.
 */
import 'reflect-metadata';

import { Controller, type DynamicModule, Get, Header, Module, Param } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ApiKeyGuard, createHttpApp, listen, ObservabilityModule } from '@lib/observability';

const BODY = process.env.BODY ?? '{"ok":true}';

@Controller('constant')
class ConstantController {
  @Get(':key')
  @Header('content-type', 'application/json; charset=utf-8')
  answer(@Param('key') _key: string): string {
    return BODY;
  }
}

@Module({})
class ConstantModule {
  static forRoot(): DynamicModule {
    return {
      module: ConstantModule,
      imports: [
        ObservabilityModule.forRoot({
          service: 'constant',
          logLevel: process.env.LOG_LEVEL ?? 'warn',
          healthChecks: { inject: [], useFactory: () => [] },
        }),
      ],
      controllers: [ConstantController],
      providers: [{ provide: APP_GUARD, useFactory: () => new ApiKeyGuard(undefined) }],
    };
  }
}

const app = await createHttpApp(ConstantModule.forRoot(), {
  title: 'constant',
  description: 'HTTP baseline of the benchmarks',
  bodyLimit: 1024 * 1024,
});
await listen(app, Number(process.env.PORT ?? 3999), '127.0.0.1', 'constant');
