import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The aggregator replicas consuming a stream. A row only names a member and the database session that
 * holds its advisory lock; whether it is alive is read from `pg_locks`, so a row left by a killed
 * replica means nothing and is swept by the others.
 */
export class CreatedAggregatorMembers1763900400000 implements MigrationInterface {
  name = 'CreatedAggregatorMembers1763900400000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE aggregator_members (
        stream text NOT NULL,
        member_id text NOT NULL CHECK (char_length(member_id) BETWEEN 1 AND 200),
        member_key int NOT NULL CHECK (member_key >= 0),
        backend_pid int NOT NULL,
        joined_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (stream, member_id)
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE aggregator_members`);
  }
}
