import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Links from a kept row to one retention may delete: ON DELETE SET NULL, and an index so the delete finds them. */
const LINKS = [
  { table: 'runs', column: 'retry_of_run_id', references: 'runs' },
  { table: 'runs', column: 'redriven_by_run_id', references: 'runs' },
  { table: 'pipeline_runs', column: 'retry_of_pipeline_run_id', references: 'pipeline_runs' },
  { table: 'pipeline_run_steps', column: 'reused_from_pipeline_run_id', references: 'pipeline_runs' },
] as const;

/**
 * Retention (docs/retention.md): a tenant's own number of days (`tenants.retention_days`, null: the platform's
 * RETENTION_DAYS), and what deleting old runs and pipeline runs in batches needs. A retry, a redrive or a reused
 * step points at an older run that retention may delete first: those links become ON DELETE SET NULL (the
 * archive keeps the old row), and each gets a partial index, without which every deleted row would scan the
 * referencing table for rows pointing at it. Outside a transaction, like the pipeline step runs migration: the
 * indexes are built CONCURRENTLY, and each foreign key is replaced by a NOT VALID one in a short transaction
 * (brief locks bounded by lock_timeout), then validated under SHARE UPDATE EXCLUSIVE while rows are written.
 * Every step may be applied again after a failure.
 */
export class Retention1733200000001 implements MigrationInterface {
  name = 'Retention1733200000001';
  transaction = false;

  async up(q: QueryRunner): Promise<void> {
    await q.query(`SET lock_timeout = '10s'`);
    try {
      await q.query(`ALTER TABLE tenants ADD COLUMN IF NOT EXISTS retention_days integer CHECK (retention_days BETWEEN 1 AND 3650)`);
      for (const { table, column, references } of LINKS) {
        const index = `${table}_${column}_idx`;
        const [invalid]: unknown[] = await q.query(`SELECT 1 FROM pg_index WHERE indexrelid = to_regclass($1) AND NOT indisvalid`, [index]);
        if (invalid) await q.query(`DROP INDEX CONCURRENTLY ${index}`);
        await q.query(`CREATE INDEX CONCURRENTLY IF NOT EXISTS ${index} ON ${table} (${column}) WHERE ${column} IS NOT NULL`);
        const fk = `${table}_${column}_fkey`;
        const [current]: { deltype: string }[] = await q.query(
          `SELECT confdeltype AS deltype FROM pg_constraint WHERE conname = $1 AND conrelid = $2::regclass`,
          [fk, table],
        );
        if (current?.deltype !== 'n') {
          await q.startTransaction();
          try {
            await q.query(`ALTER TABLE ${table} DROP CONSTRAINT IF EXISTS ${fk}`);
            await q.query(
              `ALTER TABLE ${table} ADD CONSTRAINT ${fk} FOREIGN KEY (${column}) REFERENCES ${references}(id) ON DELETE SET NULL NOT VALID`,
            );
            await q.commitTransaction();
          } catch (err) {
            await q.rollbackTransaction();
            throw err;
          }
        }
        await q.query(`ALTER TABLE ${table} VALIDATE CONSTRAINT ${fk}`);
      }
      // The run reconciler walks the unfinished runs by id (apps/api/src/runs/run-reconciler.ts): a small index of
      // just those, instead of a walk over every finished run.
      const [invalid]: unknown[] = await q.query(`SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('runs_unfinished_idx') AND NOT indisvalid`);
      if (invalid) await q.query(`DROP INDEX CONCURRENTLY runs_unfinished_idx`);
      await q.query(`CREATE INDEX CONCURRENTLY IF NOT EXISTS runs_unfinished_idx ON runs (id) WHERE status IN ('queued', 'running')`);
    } finally {
      await q.query(`RESET lock_timeout`);
    }
  }

  // Run inside a transaction (TypeORM's undo ignores `transaction = false`): plain statements, no long scan.
  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS runs_unfinished_idx`);
    for (const { table, column, references } of LINKS) {
      const fk = `${table}_${column}_fkey`;
      await q.query(`ALTER TABLE ${table} DROP CONSTRAINT IF EXISTS ${fk}`);
      await q.query(`ALTER TABLE ${table} ADD CONSTRAINT ${fk} FOREIGN KEY (${column}) REFERENCES ${references}(id) NOT VALID`);
      await q.query(`DROP INDEX IF EXISTS ${table}_${column}_idx`);
    }
    await q.query(`ALTER TABLE tenants DROP COLUMN IF EXISTS retention_days`);
  }
}
