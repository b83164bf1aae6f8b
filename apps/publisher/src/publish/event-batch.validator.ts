import { Injectable } from '@nestjs/common';
import { type FieldError, INGEST_EVENT_SCHEMA, type IngestEvent, ValidationFailedError } from '@lib/contracts';
import { Ajv, type ErrorObject } from 'ajv';
import addFormats from 'ajv-formats';

const validateEvent = (() => {
  const ajv = new Ajv({ allErrors: true, strict: true });
  (addFormats as unknown as (a: Ajv, f: string[]) => Ajv)(ajv, ['date-time']);
  return ajv.compile<IngestEvent>(INGEST_EVENT_SCHEMA);
})();

function fieldOf(error: ErrorObject): string {
  const path = error.instancePath.replace(/^\//, '').replaceAll('/', '.');
  if (error.keyword === 'required') return path ? `${path}.${String(error.params.missingProperty)}` : String(error.params.missingProperty);
  if (error.keyword === 'additionalProperties') return String(error.params.additionalProperty);
  return path || '(event)';
}

function messageOf(error: ErrorObject): string {
  switch (error.keyword) {
    case 'required':
      return 'is required';
    case 'additionalProperties':
      return 'is not a field of an event';
    case 'pattern':
      return 'must be 1-255 characters of [A-Za-z0-9._:/-] (no spaces or wildcards)';
    case 'format':
      return 'must be an ISO-8601 date-time with a zone, e.g. 2025-01-31T12:00:00Z';
    default:
      return error.message ?? 'is invalid';
  }
}

/** True when a string anywhere in `value` holds U+0000, which PostgreSQL cannot store in jsonb. */
function containsNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (Array.isArray(value)) return value.some(containsNul);
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).some(([k, v]) => k.includes('\u0000') || containsNul(v));
  }
  return false;
}

/**
 * Validates a `POST /publish` body all-or-nothing with the compiled JSON schema of an event. Accepts
 * one event, `{"events": [...]}` or a bare array; lists every problem with the event's index and field.
 */
@Injectable()
export class EventBatchValidator {
  validate(body: unknown, batchLimit: number): IngestEvent[] {
    const events = this.unwrap(body);
    if (events.length === 0) {
      throw new ValidationFailedError('the batch is empty', [{ field: 'events', message: 'must hold at least one event' }]);
    }
    if (events.length > batchLimit) {
      throw new ValidationFailedError(`the batch holds ${events.length} events; the limit is ${batchLimit}`, [
        { field: 'events', message: `must hold at most ${batchLimit} events` },
      ]);
    }
    const details: FieldError[] = [];
    events.forEach((event, index) => {
      if (!validateEvent(event)) {
        for (const error of validateEvent.errors ?? []) details.push({ index, field: fieldOf(error), message: messageOf(error) });
      } else if (Number.isNaN(Date.parse(event.timestamp)) || /^0000/.test(event.timestamp)) {
        details.push({ index, field: 'timestamp', message: 'is not a real date' });
      } else if (containsNul(event.payload) || containsNul(event.source) || event.event_id.includes('\u0000')) {
        details.push({ index, field: 'payload', message: 'must not contain the character U+0000' });
      }
    });
    if (details.length > 0) {
      const shown = details.slice(0, 5).map((d) => `events[${d.index}].${d.field} ${d.message}`);
      const more = details.length > 5 ? ` (and ${details.length - 5} more)` : '';
      throw new ValidationFailedError(`${details.length} invalid field(s): ${shown.join('; ')}${more}`, details);
    }
    return events as IngestEvent[];
  }

  private unwrap(body: unknown): unknown[] {
    if (Array.isArray(body)) return body;
    if (body !== null && typeof body === 'object') {
      if ('events' in body) {
        const events = (body as { events: unknown }).events;
        if (!Array.isArray(events)) {
          throw new ValidationFailedError('events must be an array', [{ field: 'events', message: 'must be an array' }]);
        }
        return events;
      }
      return [body];
    }
    throw new ValidationFailedError('the body must be a JSON event, an array of events or {"events": [...]}', [
      { field: '(body)', message: 'must be a JSON object or array' },
    ]);
  }
}
