import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The event contract enforced by the store itself, whoever writes to it: the aggregator no longer
 * re-validates each event, and a message that slipped past the publisher's validation fails here
 * with a data error and is dead-lettered.
 */
export class AddedEventConstraints1763900100000 implements MigrationInterface {
  name = 'AddedEventConstraints1763900100000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      ALTER TABLE events
        ADD CONSTRAINT events_topic_check CHECK (topic ~ '^[A-Za-z0-9._:/-]{1,255}$'),
        ADD CONSTRAINT events_event_id_check CHECK (char_length(event_id) BETWEEN 1 AND 255),
        ADD CONSTRAINT events_source_check CHECK (char_length(source) BETWEEN 1 AND 255),
        ADD CONSTRAINT events_payload_check CHECK (jsonb_typeof(payload) = 'object')`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      ALTER TABLE events
        DROP CONSTRAINT events_topic_check,
        DROP CONSTRAINT events_event_id_check,
        DROP CONSTRAINT events_source_check,
        DROP CONSTRAINT events_payload_check`);
  }
}
