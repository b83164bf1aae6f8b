import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The coherent cache: entries (the source of truth every replica fills from), the version sequence
 * that orders the writes of a key, and the membership of replicas, each holding a lease that writers
 * wait out when a replica does not acknowledge an invalidation.
 */
export class CreatedCacheTables1763900300000 implements MigrationInterface {
  name = 'CreatedCacheTables1763900300000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE SEQUENCE cache_versions AS bigint`);
    // json, not jsonb: the value comes back exactly as written (key order, duplicate keys, \\u0000)
    await queryRunner.query(`
      CREATE TABLE cache_entries (
        key text PRIMARY KEY CONSTRAINT cache_entries_key_check CHECK (key ~ '^[A-Za-z0-9._:-]{1,100}$'),
        value json NOT NULL,
        version bigint NOT NULL,
        expires_at timestamptz,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(
      `CREATE INDEX cache_entries_expires_at_idx ON cache_entries (expires_at) WHERE expires_at IS NOT NULL`,
    );
    await queryRunner.query(`
      CREATE TABLE cache_members (
        replica_id text PRIMARY KEY,
        incarnation bigint NOT NULL DEFAULT 1,
        address text NOT NULL,
        expires_at timestamptz NOT NULL,
        revoked_at timestamptz,
        registered_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE cache_members`);
    await queryRunner.query(`DROP TABLE cache_entries`);
    await queryRunner.query(`DROP SEQUENCE cache_versions`);
  }
}
