import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The run output store: each attempt's output as it is printed, in ordered
 * chunks written by the worker every OUTPUT_FLUSH_MS (docs/operations.md,
 * "Run output"). Chunks live outside Temporal history, so a worker killed
 * with `kill -9` keeps everything it flushed, and a history carries only a
 * bounded tail. The primary key is the read order (one attempt's chunks, by
 * sequence) and the only index: the table is append-only, so it stays small
 * per row and cheap to delete by run. `output_store` on the attempt holds
 * what was printed and kept per stream, written when the attempt ends.
 * `run_attempts` gains a nullable column without a default: a catalog change.
 */
export class RunOutput1733100000000 implements MigrationInterface {
  name = 'RunOutput1733100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE run_output_chunks (
        run_id uuid NOT NULL,
        tenant_id uuid NOT NULL,
        shard_index integer NOT NULL,
        attempt integer NOT NULL,
        seq integer NOT NULL,
        stream text NOT NULL CHECK (stream IN ('stdout', 'stderr')),
        data text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (run_id, shard_index, attempt, seq)
      )`);
    // A brief ACCESS EXCLUSIVE on run_attempts: bounded, so a long transaction fails the migration instead of
    // queueing every attempt's write behind it.
    await q.query(`SET LOCAL lock_timeout = '10s'`);
    await q.query(`ALTER TABLE run_attempts ADD COLUMN output_store jsonb`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE run_attempts DROP COLUMN output_store`);
    await q.query(`DROP TABLE run_output_chunks`);
  }
}
