import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The link of a task run to its pipeline run, step and item, and the outputs
 * the step's dependants read. Apart from the pipelines migration because
 * `runs` is the largest table and is written by every worker: this runs
 * outside a transaction, so no statement holds a lock on it for longer than
 * it needs itself. Adding nullable columns without a default only changes the
 * catalog (a brief ACCESS EXCLUSIVE, bounded by lock_timeout so a long
 * transaction on `runs` fails the migration instead of queueing every write
 * behind it); the foreign key is added NOT VALID and validated under SHARE
 * UPDATE EXCLUSIVE, and the index is built CONCURRENTLY, both while runs are
 * written. Each step may be applied again after a failure (an index a failed
 * concurrent build left invalid is dropped and rebuilt).
 */
export class PipelineStepRuns1733000000001 implements MigrationInterface {
  name = 'PipelineStepRuns1733000000001';
  transaction = false;

  async up(q: QueryRunner): Promise<void> {
    await q.query(`SET lock_timeout = '10s'`);
    try {
      await q.query(`
        ALTER TABLE runs
          ADD COLUMN IF NOT EXISTS pipeline_run_id uuid,
          ADD COLUMN IF NOT EXISTS pipeline_step_key text,
          ADD COLUMN IF NOT EXISTS item_index integer,
          ADD COLUMN IF NOT EXISTS outputs jsonb`);
      const [fk]: unknown[] = await q.query(
        `SELECT 1 FROM pg_constraint WHERE conname = 'runs_pipeline_run_fk' AND conrelid = 'runs'::regclass`,
      );
      if (!fk) {
        await q.query(
          `ALTER TABLE runs ADD CONSTRAINT runs_pipeline_run_fk FOREIGN KEY (pipeline_run_id) REFERENCES pipeline_runs(id) NOT VALID`,
        );
      }
      await q.query(`ALTER TABLE runs VALIDATE CONSTRAINT runs_pipeline_run_fk`);
      const [invalid]: unknown[] = await q.query(
        `SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('runs_pipeline_item_uq') AND NOT indisvalid`,
      );
      if (invalid) await q.query(`DROP INDEX CONCURRENTLY runs_pipeline_item_uq`);
      // One run per item of a step of a pipeline run: a retried start or a continued-as-new workflow finds its row.
      // Its leading column also serves lookups of a pipeline run's runs (no separate index on pipeline_run_id).
      await q.query(
        `CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS runs_pipeline_item_uq
           ON runs (pipeline_run_id, pipeline_step_key, coalesce(item_index, -1)) WHERE pipeline_run_id IS NOT NULL`,
      );
    } finally {
      await q.query(`RESET lock_timeout`);
    }
  }

  // Also run inside a transaction (TypeORM's undo ignores `transaction = false`): plain DROPs, no scan of `runs`.
  async down(q: QueryRunner): Promise<void> {
    // Runs of pipeline steps stay (trigger 'pipeline' existed before); only their link to the pipeline run goes.
    await q.query(`DROP INDEX IF EXISTS runs_pipeline_item_uq`);
    await q.query(
      `ALTER TABLE runs DROP COLUMN IF EXISTS outputs, DROP COLUMN IF EXISTS item_index, DROP COLUMN IF EXISTS pipeline_step_key,
                        DROP COLUMN IF EXISTS pipeline_run_id`,
    );
  }
}
