import { hostname } from 'node:os';

import { Inject, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG } from '@lib/config';
import { PgNotificationListener } from '@lib/persistence';

import type { LockServiceConfig } from '../lock-service.env.js';
import { LeaseSweeper } from './lease-sweeper.js';
import { LockMessagesController } from './lock-messages.controller.js';
import { lockChannel } from './lock-channel.js';
import { LOCK_REPLICA, LockWaits } from './lock-waits.js';
import { LocksController } from './locks.controller.js';
import { LocksMetrics } from './locks.metrics.js';
import { LocksRepository } from './locks.repository.js';
import { LocksService } from './locks.service.js';
import { SeedRoutesController } from './seed-routes.controller.js';

/** Closes the LISTEN connection last, after the waiters were answered. */
@Injectable()
class ListenerLifecycle implements OnApplicationShutdown {
  constructor(@Inject(PgNotificationListener) private readonly listener: PgNotificationListener) {}

  onApplicationShutdown(): Promise<void> {
    return this.listener.close();
  }
}

@Module({
  controllers: [LocksController, SeedRoutesController, LockMessagesController],
  providers: [
    { provide: LOCK_REPLICA, useValue: `${hostname()}:${process.pid}` },
    {
      provide: PgNotificationListener,
      inject: [APP_CONFIG],
      useFactory: (config: LockServiceConfig) =>
        PgNotificationListener.open({
          url: config.DATABASE_URL,
          channel: lockChannel(config.DB_SCHEMA),
          applicationName: 'lock-service:listen',
        }),
    },
    ListenerLifecycle,
    LocksRepository,
    LockWaits,
    LocksMetrics,
    LocksService,
    LeaseSweeper,
  ],
})
export class LocksModule {}
