import { Module } from '@nestjs/common';

import { SimulationConfigService } from './simulation-config.service.js';

/** The simulated network (loss, latency, retries, ack timeout) shared by every replica. */
@Module({ providers: [SimulationConfigService], exports: [SimulationConfigService] })
export class SimulationModule {}
