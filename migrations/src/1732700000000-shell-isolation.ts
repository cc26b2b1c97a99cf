import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Shell isolation: how each attempt was isolated and which limit it crossed; tenants' shell policy. */
export class ShellIsolation1732700000000 implements MigrationInterface {
  name = 'ShellIsolation1732700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE run_attempts ADD COLUMN isolation text, ADD COLUMN resource_limit text`);
    await q.query(`ALTER TABLE tenants ADD COLUMN shell_policy jsonb`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tenants DROP COLUMN shell_policy`);
    await q.query(`ALTER TABLE run_attempts DROP COLUMN isolation, DROP COLUMN resource_limit`);
  }
}
