import { Controller, Get, HttpCode, Inject, Param, ParseIntPipe, Post, Query } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';

import { DeadLetterService, type DeadLetter } from './dead-letter.service.js';
import { ListDeadLettersQuery } from './list-dead-letters.dto.js';

@ApiTags('dead letters')
@Controller('dead-letters')
export class DeadLetterController {
  constructor(@Inject(DeadLetterService) private readonly deadLetters: DeadLetterService) {}

  @Get()
  @ApiOperation({ summary: 'Poison messages set aside after max deliveries, oldest first' })
  list(
    @Query() query: ListDeadLettersQuery,
  ): Promise<{ dead_letters: DeadLetter[]; total: number; next_after: number | null }> {
    return this.deadLetters.list(query.after ?? 0, query.limit ?? 100);
  }

  @Post(':sequence/replay')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Publish a dead letter back to its partition and remove it from the dead-letter stream',
  })
  replay(
    @Param('sequence', ParseIntPipe) sequence: number,
  ): Promise<{ replayed: number; subject: string; new_sequence: number }> {
    return this.deadLetters.replay(sequence);
  }
}
