import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `runs_tenant_refused_idx`: the runs that were refused a slot and still wait, per tenant, in the order they are
 * woken (libs/db/src/run-slots.ts, runsToWake). Without it a finishing run read every queued run of its tenant,
 * also those that had not asked for a slot yet, while it held the tenant's admission lock: about a thousand
 * rows per finished run during a burst. Built CONCURRENTLY outside a transaction, like the retention migration,
 * so runs keep being written while it builds; an invalid index left by a failed build is dropped and rebuilt.
 */
export class SlotRefusedIndex1733300000001 implements MigrationInterface {
  name = 'SlotRefusedIndex1733300000001';
  transaction = false;

  async up(q: QueryRunner): Promise<void> {
    // Also bounds the build's wait for older transactions: one running longer fails the build, and a second
    // run of the migration drops the invalid index and builds it again.
    await q.query(`SET lock_timeout = '10s'`);
    try {
      const [invalid]: unknown[] = await q.query(
        `SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('runs_tenant_refused_idx') AND NOT indisvalid`,
      );
      if (invalid) await q.query(`DROP INDEX CONCURRENTLY runs_tenant_refused_idx`);
      await q.query(
        `CREATE INDEX CONCURRENTLY IF NOT EXISTS runs_tenant_refused_idx ON runs (tenant_id, priority DESC, queued_at, id)
          WHERE admitted_at IS NULL AND status = 'queued' AND slot_refused_at IS NOT NULL`,
      );
    } finally {
      await q.query(`RESET lock_timeout`);
    }
  }

  // Run inside a transaction (TypeORM's undo ignores `transaction = false`): a plain drop, whose exclusive lock
  // must not queue behind a long reader and hold up every query on runs.
  async down(q: QueryRunner): Promise<void> {
    await q.query(`SET LOCAL lock_timeout = '10s'`);
    await q.query(`DROP INDEX IF EXISTS runs_tenant_refused_idx`);
  }
}
