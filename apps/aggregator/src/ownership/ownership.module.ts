import { Module } from '@nestjs/common';

import { IngestModule } from '../ingest/ingest.module.js';
import { MembershipRepository } from './membership.repository.js';
import { OwnershipService } from './ownership.service.js';

/** Which replica consumes which partition: membership, leases and rebalancing. */
@Module({
  imports: [IngestModule],
  providers: [MembershipRepository, OwnershipService],
  exports: [OwnershipService],
})
export class OwnershipModule {}
