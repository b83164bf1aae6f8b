import { Body, Controller, Get, HttpCode, Inject, Post } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import type { LockGrant } from '@lib/contracts';

import { SeedAcquireDto, SeedReleaseDto } from './dto/seed-routes.dto.js';
import { LocksService } from './locks.service.js';

/** The seed's routes, kept for the scripts written against it: thin aliases of the `/locks` routes. */
@ApiTags('seed compatibility')
@Controller()
export class SeedRoutesController {
  constructor(@Inject(LocksService) private readonly locks: LocksService) {}

  @Post('lock/acquire')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Alias of POST /locks/:resource/acquire (lock_type is the mode); adds success: true',
  })
  async acquire(@Body() body: SeedAcquireDto): Promise<LockGrant & { success: true }> {
    const grant = await this.locks.acquire(body.resource_id, {
      client_id: body.client_id,
      mode: body.lock_type,
      ttl_ms: body.ttl_ms,
      wait_ms: body.wait_ms,
    });
    return { success: true, ...grant };
  }

  @Post('lock/release')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Alias of POST /locks/:resource/release without a token: the holder is found by client_id',
  })
  async release(
    @Body() body: SeedReleaseDto,
  ): Promise<{ success: true; resource: string; client_id: string; token: number }> {
    const { token } = await this.locks.release(body.resource_id, body.client_id, null);
    return { success: true, resource: body.resource_id, client_id: body.client_id, token };
  }

  @Get('status')
  @ApiOperation({ summary: "This replica's status and counts of the live locks (the seed's node status)" })
  status(): ReturnType<LocksService['status']> {
    return this.locks.status();
  }
}
