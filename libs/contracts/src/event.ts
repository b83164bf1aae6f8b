/** Characters a topic may contain: letters, digits and `. _ : / -` (never a NATS wildcard or a space). */
export const TOPIC_PATTERN = '^[A-Za-z0-9._:/-]{1,255}$';
export const MAX_EVENT_ID_LENGTH = 255;

/**
 * One event as clients send it and as the aggregator stores it, keyed by `(topic, event_id)`.
 * `payload` is any JSON object; `timestamp` is ISO-8601 with a zone.
 */
export interface IngestEvent {
  topic: string;
  event_id: string;
  timestamp: string;
  source: string;
  payload: Record<string, unknown>;
}

/** A stored event, as `GET /events` returns it. `seq` is the ingestion order (strictly increasing per topic). */
export interface StoredEvent extends IngestEvent {
  seq: string;
  ingested_at: string;
}

/** JSON schema of one event; compiled once by the publisher and by the aggregator's decoder. */
export const INGEST_EVENT_SCHEMA = {
  $id: 'IngestEvent',
  type: 'object',
  additionalProperties: false,
  required: ['topic', 'event_id', 'timestamp', 'source', 'payload'],
  properties: {
    topic: { type: 'string', minLength: 1, maxLength: 255, pattern: TOPIC_PATTERN },
    event_id: { type: 'string', minLength: 1, maxLength: MAX_EVENT_ID_LENGTH },
    timestamp: { type: 'string', format: 'date-time', maxLength: 64 },
    source: { type: 'string', minLength: 1, maxLength: 255 },
    payload: { type: 'object' },
  },
} as const;

/** The counters of the pipeline, identical whichever replica answers. */
export interface PipelineStats {
  received: number;
  unique_processed: number;
  duplicate_dropped: number;
  conflicting_duplicates: number;
  dead_lettered: number;
  topics: string[];
  topic_count: number;
  uptime: number;
}
