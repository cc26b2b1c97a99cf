import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `runs.slot_refused_at`: when a run first found no free slot of its tenant (libs/db/src/run-slots.ts). A
 * finished run wakes only runs that were refused, so a run that has been recorded but not yet asked for a
 * slot is not sent a signal it does not need. Nullable, no default: adding it does not rewrite the table.
 */
export class SlotWaits1733300000000 implements MigrationInterface {
  name = 'SlotWaits1733300000000';

  async up(q: QueryRunner): Promise<void> {
    // Brief, but an exclusive lock: queued behind a long reader, it would hold up every query on runs.
    await q.query(`SET LOCAL lock_timeout = '10s'`);
    await q.query(`ALTER TABLE runs ADD COLUMN IF NOT EXISTS slot_refused_at timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE runs DROP COLUMN IF EXISTS slot_refused_at`);
  }
}
