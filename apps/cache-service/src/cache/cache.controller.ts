import { Body, Controller, Delete, Get, Header, HttpCode, Inject, Param, Post, Put } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';

import { type CacheStats, CacheService, type DeleteResult, type WriteResult } from './cache.service.js';
import { PutEntryBody } from './dto/put-entry.dto.js';
import { SetEntryBody } from './dto/set-entry.dto.js';

@ApiTags('cache')
@Controller('cache')
export class CacheController {
  constructor(@Inject(CacheService) private readonly cache: CacheService) {}

  @Get('stats')
  @ApiOperation({
    summary: "This replica's counters: hits, misses, evictions, invalidations, size, coherence",
  })
  stats(): CacheStats {
    return this.cache.stats();
  }

  @Post('set')
  @HttpCode(200)
  @ApiOperation({ summary: "The seed's write: same as PUT /cache/:key with the key in the body" })
  set(@Body() body: SetEntryBody): Promise<WriteResult> {
    return this.cache.write(body.key, body.value, body.ttl_ms);
  }

  @Get(':key')
  @Header('content-type', 'application/json; charset=utf-8')
  @ApiOperation({
    summary: 'Read an entry: from memory when this replica is coherent, else from Postgres; 404 when absent',
  })
  @ApiOkResponse({ description: '{key, value, version, source: "memory" | "database"}' })
  get(@Param('key') key: string): string | Promise<string> {
    return this.cache.read(key);
  }

  @Put(':key')
  @ApiOperation({
    summary: 'Write an entry; answers once every replica has dropped the old value (or its lease ran out)',
  })
  put(@Param('key') key: string, @Body() body: PutEntryBody): Promise<WriteResult> {
    return this.cache.write(key, body.value, body.ttl_ms);
  }

  @Delete(':key')
  @ApiOperation({ summary: 'Delete an entry, invalidated like a write; 404 when there was none' })
  remove(@Param('key') key: string): Promise<DeleteResult> {
    return this.cache.remove(key);
  }
}
