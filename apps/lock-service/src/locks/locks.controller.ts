import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { LockGrant } from '@lib/contracts';

import { AcquireLockDto, ReleaseLockDto, RenewLockDto } from './dto/lock-requests.dto.js';
import { ListAuditQuery, ListLocksQuery } from './dto/list-queries.dto.js';
import type { AuditEntry, LockState } from './locks.repository.js';
import { LocksService } from './locks.service.js';

@ApiTags('locks')
@Controller('locks')
export class LocksController {
  constructor(@Inject(LocksService) private readonly locks: LocksService) {}

  @Get()
  @ApiOperation({ summary: 'Resources held or awaited now, by name (paged by next_cursor)' })
  list(@Query() query: ListLocksQuery): Promise<{ locks: LockState[]; next_cursor: string | null }> {
    return this.locks.list(query.limit ?? 100, query.cursor);
  }

  @Get('audit')
  @ApiOperation({
    summary: 'Audit log: request, grant, wait, release, renew, expiry, timeout, abandon, refusal, deadlock',
  })
  audit(@Query() query: ListAuditQuery): Promise<{ entries: AuditEntry[]; next_cursor: string | null }> {
    return this.locks.audit(query);
  }

  @Get(':resource')
  @ApiOperation({ summary: 'Live holders (with tokens and lease ends) and FIFO waiters of a resource' })
  describe(@Param('resource') resource: string): Promise<LockState> {
    return this.locks.describe(resource);
  }

  @Post(':resource/acquire')
  @HttpCode(200)
  @ApiOperation({ summary: 'Acquire (or wait up to wait_ms for) a lease; answers a fencing token' })
  @ApiResponse({ status: 200, description: '{resource, client_id, mode, token, expires_at}' })
  @ApiResponse({
    status: 409,
    description:
      'LOCK_CONFLICT (wait_ms 0), LOCK_TIMEOUT (with holders), DEADLOCK (with cycle), LOCK_MODE_MISMATCH, ' +
      'LOCK_REQUEST_SUPERSEDED',
  })
  acquire(@Param('resource') resource: string, @Body() body: AcquireLockDto): Promise<LockGrant> {
    return this.locks.acquire(resource, body);
  }

  @Post(':resource/release')
  @HttpCode(200)
  @ApiOperation({ summary: 'Release a lease: only its holder (client_id and token)' })
  @ApiResponse({ status: 409, description: 'NOT_HOLDER, LEASE_EXPIRED' })
  async release(
    @Param('resource') resource: string,
    @Body() body: ReleaseLockDto,
  ): Promise<{ resource: string; client_id: string; token: number; released: true }> {
    const { token } = await this.locks.release(resource, body.client_id, body.token);
    return { resource, client_id: body.client_id, token, released: true };
  }

  @Post(':resource/renew')
  @HttpCode(200)
  @ApiOperation({ summary: 'Extend a live lease to ttl_ms from now: only its holder (client_id and token)' })
  @ApiResponse({ status: 409, description: 'NOT_HOLDER, LEASE_EXPIRED' })
  renew(@Param('resource') resource: string, @Body() body: RenewLockDto): Promise<LockGrant> {
    return this.locks.renew(resource, body.client_id, body.token, body.ttl_ms);
  }
}
