import { type DynamicModule, Module } from '@nestjs/common';
import { ServicePlatformModule } from '@lib/platform';

import type { LockServiceConfig } from './lock-service.env.js';
import { LocksModule } from './locks/locks.module.js';

/** The lock manager: HTTP and NATS request/reply over lock state kept in Postgres. */
@Module({})
export class LockServiceModule {
  static forRoot(config: LockServiceConfig): DynamicModule {
    return {
      module: LockServiceModule,
      imports: [ServicePlatformModule.forRoot({ service: 'lock-service', config, streams: [] }), LocksModule],
    };
  }
}
