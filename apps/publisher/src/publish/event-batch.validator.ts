import { Injectable } from '@nestjs/common';
import { type IngestEvent, validateEvents, ValidationFailedError } from '@lib/contracts';

/**
 * Validates a `POST /publish` body all-or-nothing. Accepts one event, `{"events": [...]}` or a bare
 * array; lists every problem with the event's index and field.
 */
@Injectable()
export class EventBatchValidator {
  validate(body: unknown, batchLimit: number): IngestEvent[] {
    const events = this.unwrap(body);
    if (events.length === 0) {
      throw new ValidationFailedError('the batch is empty', [
        { field: 'events', message: 'must hold at least one event' },
      ]);
    }
    if (events.length > batchLimit) {
      throw new ValidationFailedError(`the batch holds ${events.length} events; the limit is ${batchLimit}`, [
        { field: 'events', message: `must hold at most ${batchLimit} events` },
      ]);
    }
    const details = validateEvents(events);
    if (details.length > 0) {
      const shown = details.slice(0, 5).map((d) => `events[${d.index}].${d.field} ${d.message}`);
      const more = details.length > 5 ? ` (and ${details.length - 5} more)` : '';
      throw new ValidationFailedError(
        `${details.length} invalid field(s): ${shown.join('; ')}${more}`,
        details,
      );
    }
    return events as IngestEvent[];
  }

  private unwrap(body: unknown): unknown[] {
    if (Array.isArray(body)) return body;
    if (body !== null && typeof body === 'object') {
      if ('events' in body) {
        const events = body.events;
        if (!Array.isArray(events)) {
          throw new ValidationFailedError('events must be an array', [
            { field: 'events', message: 'must be an array' },
          ]);
        }
        return events;
      }
      return [body];
    }
    throw new ValidationFailedError(
      'the body must be a JSON event, an array of events or {"events": [...]}',
      [{ field: '(body)', message: 'must be a JSON object or array' }],
    );
  }
}
