import { randomUUID } from 'node:crypto';

import { DynamicModule, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { LoggerModule } from 'nestjs-pino';

import { HEALTH_CHECKS, HealthController, type HealthCheckFn } from './health.js';
import { createMetricsRegistry, METRICS_REGISTRY, MetricsController } from './metrics.js';

export interface ObservabilityOptions {
  service: string;
  logLevel: string;
  /** Builds the checks of `/health` from injected providers. */
  healthChecks: { inject: unknown[]; useFactory: (...deps: never[]) => HealthCheckFn[] };
}

/**
 * JSON logs (pino) with a correlation id per request (`x-correlation-id` honoured), Prometheus
 * `/metrics` from a per-application registry, and terminus `/health`.
 */
@Module({})
export class ObservabilityModule {
  static forRoot(options: ObservabilityOptions): DynamicModule {
    return {
      module: ObservabilityModule,
      global: true,
      imports: [
        TerminusModule.forRoot({ logger: false }),
        LoggerModule.forRoot({
          pinoHttp: {
            level: options.logLevel,
            base: { service: options.service },
            // the HTTP adapter has set the header (client's or new) before any middleware runs
            genReqId: (req, res) => {
              const id = String(req.headers['x-correlation-id'] ?? randomUUID());
              res.setHeader('x-correlation-id', id);
              return id;
            },
            autoLogging: {
              ignore: (req) => req.url?.startsWith('/health') === true || req.url === '/metrics',
            },
            serializers: {
              req: (req: { id: string; method: string; url: string }) => ({
                id: req.id,
                method: req.method,
                url: req.url,
              }),
            },
          },
        }),
      ],
      controllers: [HealthController, MetricsController],
      providers: [
        { provide: METRICS_REGISTRY, useFactory: () => createMetricsRegistry(options.service) },
        {
          provide: HEALTH_CHECKS,
          inject: options.healthChecks.inject as never[],
          useFactory: options.healthChecks.useFactory,
        },
      ],
      exports: [METRICS_REGISTRY],
    };
  }
}
