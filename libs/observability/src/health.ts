import { Controller, Get, Inject } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  HealthCheck,
  HealthCheckService,
  type HealthCheckResult,
  type HealthIndicatorResult,
} from '@nestjs/terminus';

/** DI token: the checks `/health` runs (each resolves to a terminus result, `down` fails the check with 503). */
export const HEALTH_CHECKS = Symbol('HEALTH_CHECKS');
export type HealthCheckFn = () => Promise<HealthIndicatorResult>;

@ApiTags('operations')
@Controller('health')
export class HealthController {
  constructor(
    @Inject(HealthCheckService) private readonly health: HealthCheckService,
    @Inject(HEALTH_CHECKS) private readonly checks: HealthCheckFn[],
  ) {}

  @Get()
  @HealthCheck()
  @ApiOperation({ summary: 'Readiness: NATS and PostgreSQL reachable (503 when not)' })
  check(): Promise<HealthCheckResult> {
    return this.health.check(this.checks);
  }

  /**
   * Liveness only: the process serves HTTP. An orchestrator restarts on this one, not on `/health`,
   * so an outage of NATS or Postgres takes replicas out of rotation without restarting them all.
   */
  @Get('live')
  @ApiOperation({ summary: 'Liveness: the process answers (no dependency checked)' })
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }
}
