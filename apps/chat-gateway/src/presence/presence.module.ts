import { Module } from '@nestjs/common';

import { PresenceService } from './presence.service.js';

/** The registered nodes over every replica (join, leave, away for recovery). */
@Module({ providers: [PresenceService], exports: [PresenceService] })
export class PresenceModule {}
