import { Controller, Inject, UseFilters, UsePipes } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { LOCK_SUBJECT_SUFFIXES, type LockGrant } from '@lib/contracts';
import { createValidationPipe, RpcErrorFilter } from '@lib/observability';

import {
  AcquireLockMessage,
  GetLockMessage,
  ReleaseLockMessage,
  RenewLockMessage,
} from './dto/lock-requests.dto.js';
import { ListAuditQuery, ListLocksQuery } from './dto/list-queries.dto.js';
import type { AuditEntry, LockState } from './locks.repository.js';
import { LocksService } from './locks.service.js';

/**
 * The lock operations over NATS request/reply, on `<NATS_NAMESPACE>.locks.*` in one queue group: the
 * body is the HTTP body plus `resource`, the reply the HTTP answer's body (errors included).
 */
@Controller()
@UseFilters(RpcErrorFilter)
@UsePipes(createValidationPipe())
export class LockMessagesController {
  constructor(@Inject(LocksService) private readonly locks: LocksService) {}

  @MessagePattern(LOCK_SUBJECT_SUFFIXES.acquire)
  acquire(@Payload() message: AcquireLockMessage): Promise<LockGrant> {
    const { resource, ...request } = message;
    return this.locks.acquire(resource, request);
  }

  @MessagePattern(LOCK_SUBJECT_SUFFIXES.release)
  async release(
    @Payload() message: ReleaseLockMessage,
  ): Promise<{ resource: string; client_id: string; token: number; released: true }> {
    const { token } = await this.locks.release(message.resource, message.client_id, message.token);
    return { resource: message.resource, client_id: message.client_id, token, released: true };
  }

  @MessagePattern(LOCK_SUBJECT_SUFFIXES.renew)
  renew(@Payload() message: RenewLockMessage): Promise<LockGrant> {
    return this.locks.renew(message.resource, message.client_id, message.token, message.ttl_ms);
  }

  @MessagePattern(LOCK_SUBJECT_SUFFIXES.get)
  describe(@Payload() message: GetLockMessage): Promise<LockState> {
    return this.locks.describe(message.resource);
  }

  @MessagePattern(LOCK_SUBJECT_SUFFIXES.list)
  list(@Payload() message: ListLocksQuery): Promise<{ locks: LockState[]; next_cursor: string | null }> {
    return this.locks.list(message.limit ?? 100, message.cursor);
  }

  @MessagePattern(LOCK_SUBJECT_SUFFIXES.audit)
  audit(@Payload() message: ListAuditQuery): Promise<{ entries: AuditEntry[]; next_cursor: string | null }> {
    return this.locks.audit(message);
  }
}
