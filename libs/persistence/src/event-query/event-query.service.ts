import { Inject, Injectable } from '@nestjs/common';
import { type PipelineStats, UnavailableError, ValidationFailedError } from '@lib/contracts';

import { type EventPage, EventStoreRepository } from '../event-store.repository.js';
import { isTransientDatabaseError } from '../database-errors.js';

/** Opaque cursors: the last seen ingestion sequence, base64url-encoded. */
function encodeCursor(seq: string): string {
  return Buffer.from(`s:${seq}`).toString('base64url');
}

function decodeCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString();
  const match = /^s:(\d{1,19})$/.exec(text);
  if (!match)
    throw new ValidationFailedError('cursor is not a cursor this service issued', [
      { field: 'cursor', message: 'not a cursor this service issued' },
    ]);
  return match[1];
}

/** Reads of the event store that both the publisher and the aggregator serve (`GET /stats`, `GET /events`). */
@Injectable()
export class EventQueryService {
  private readonly startedAt = Date.now();

  constructor(@Inject(EventStoreRepository) private readonly store: EventStoreRepository) {}

  async getStats(): Promise<PipelineStats> {
    const totals = await whileDatabaseAnswers(() => this.store.getStatistics());
    return { ...totals, uptime: Math.round((Date.now() - this.startedAt) / 1000) };
  }

  async listEvents(query: { topic?: string; limit?: number; cursor?: string }): Promise<EventPage> {
    const limit = query.limit ?? 100;
    const afterSeq = query.cursor === undefined ? '0' : decodeCursor(query.cursor);
    const events = await whileDatabaseAnswers(() =>
      this.store.listEvents({ topic: query.topic, limit, afterSeq }),
    );
    const last = events.at(-1);
    return { events, next_cursor: events.length === limit && last ? encodeCursor(last.seq) : null };
  }
}

/** Runs a read; an outage of the database becomes `UnavailableError` (503 with Retry-After), not a 500. */
async function whileDatabaseAnswers<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (isTransientDatabaseError(error))
      throw new UnavailableError('the database is unreachable; retry later', 2);
    throw error;
  }
}
