import { Inject, Injectable } from '@nestjs/common';
import { METRICS_REGISTRY } from '@lib/observability';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

import { LockWaits } from './lock-waits.js';

/** Prometheus metrics of this replica's lock operations (the state itself is in Postgres). */
@Injectable()
export class LocksMetrics {
  private readonly operations: Counter<'operation' | 'outcome'>;
  private readonly waitSeconds: Histogram;

  constructor(@Inject(METRICS_REGISTRY) registry: Registry, @Inject(LockWaits) waits: LockWaits) {
    this.operations = new Counter({
      name: 'lock_operations_total',
      help: 'Lock operations answered by this replica, by operation and outcome (granted, conflict, timeout, …)',
      labelNames: ['operation', 'outcome'],
      registers: [registry],
    });
    this.waitSeconds = new Histogram({
      name: 'lock_wait_seconds',
      help: 'Time a request waited in the queue before its grant',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    });
    new Gauge({
      name: 'lock_waiting_requests',
      help: 'Requests of this replica waiting in a queue now',
      registers: [registry],
      collect() {
        this.set(waits.waiting);
      },
    });
  }

  count(operation: string, outcome: string): void {
    this.operations.inc({ operation, outcome });
  }

  observeWait(seconds: number): void {
    this.waitSeconds.observe(seconds);
  }
}
