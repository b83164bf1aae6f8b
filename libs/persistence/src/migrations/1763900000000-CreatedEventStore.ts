import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The event store: one row per `(topic, event_id)`, per-topic counters and per-partition watermarks. */
export class CreatedEventStore1763900000000 implements MigrationInterface {
  name = 'CreatedEventStore1763900000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE events (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        topic text NOT NULL,
        event_id text NOT NULL,
        "timestamp" timestamptz NOT NULL,
        source text NOT NULL,
        payload jsonb NOT NULL,
        ingested_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT events_topic_event_id_key UNIQUE (topic, event_id)
      )`);
    await queryRunner.query(`CREATE INDEX events_topic_id_idx ON events (topic, id)`);
    await queryRunner.query(`
      CREATE TABLE topic_stats (
        topic text PRIMARY KEY,
        received bigint NOT NULL DEFAULT 0,
        unique_processed bigint NOT NULL DEFAULT 0,
        duplicate_dropped bigint NOT NULL DEFAULT 0,
        conflicting_duplicates bigint NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(`
      CREATE TABLE partition_offsets (
        stream text NOT NULL,
        partition int NOT NULL,
        watermark bigint NOT NULL DEFAULT 0,
        dead_lettered bigint NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (stream, partition)
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE partition_offsets`);
    await queryRunner.query(`DROP TABLE topic_stats`);
    await queryRunner.query(`DROP TABLE events`);
  }
}
