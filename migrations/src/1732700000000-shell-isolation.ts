import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Shell isolation: how each attempt was isolated and which limit it crossed; tenants' shell policy. */
export class ShellIsolation1732700000000 implements MigrationInterface {
  name = 'ShellIsolation1732700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE run_attempts ADD COLUMN isolation text, ADD COLUMN resource_limit text`);
    await q.query(`ALTER TABLE tenants ADD COLUMN shell_policy jsonb`);
    // Isolation is no longer a per-task choice: the old flag goes from stored specs.
    await q.query(`UPDATE tasks SET spec = spec - 'sandbox' WHERE executor = 'shell' AND spec ? 'sandbox'`);
    // workingDirectory now names a mount point inside the sandbox: one under a system directory cannot be mounted.
    await q.query(
      `UPDATE tasks SET spec = spec - 'workingDirectory'
        WHERE executor = 'shell' AND spec->>'workingDirectory' ~ '^/(usr|bin|sbin|lib|lib32|lib64|libx32|etc|proc|dev|tmp|sys)?(/|$)'`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tenants DROP COLUMN shell_policy`);
    await q.query(`ALTER TABLE run_attempts DROP COLUMN isolation, DROP COLUMN resource_limit`);
  }
}
