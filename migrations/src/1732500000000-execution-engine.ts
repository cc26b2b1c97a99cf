import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Execution engine: trigger parameters and idempotency body hashes, retries
 * linked to their original, dead letters, per-tenant concurrency slots
 * (`admitted_at`), shards with their own records, HTTP status codes,
 * encrypted task secrets and alert settings with their dedup state.
 */
export class ExecutionEngine1732500000000 implements MigrationInterface {
  name = 'ExecutionEngine1732500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tasks ADD COLUMN secrets text, ADD COLUMN secret_names jsonb NOT NULL DEFAULT '{}',
                   ADD COLUMN alerts jsonb`);
    await q.query(`ALTER TABLE tenants ADD COLUMN alert_settings jsonb`);
    await q.query(`
      ALTER TABLE runs
        ADD COLUMN overrides jsonb NOT NULL DEFAULT '{}',
        ADD COLUMN request_hash text,
        ADD COLUMN retry_of_run_id uuid REFERENCES runs(id),
        ADD COLUMN priority integer NOT NULL DEFAULT 0,
        ADD COLUMN shard_count integer NOT NULL DEFAULT 1 CHECK (shard_count > 0),
        ADD COLUMN admitted_at timestamptz,
        ADD COLUMN http_status integer,
        ADD COLUMN dead_letter boolean NOT NULL DEFAULT false,
        ADD COLUMN redriven_at timestamptz,
        ADD COLUMN redriven_by_run_id uuid REFERENCES runs(id)`);
    // Slots in use per tenant, and the runs waiting for one in admission order.
    await q.query(
      `CREATE INDEX runs_tenant_admitted_idx ON runs (tenant_id) WHERE admitted_at IS NOT NULL AND status IN ('queued', 'running')`,
    );
    await q.query(
      `CREATE INDEX runs_tenant_waiting_idx ON runs (tenant_id, priority DESC, queued_at, id) WHERE admitted_at IS NULL AND status = 'queued'`,
    );
    await q.query(
      `CREATE INDEX runs_dead_letters_idx ON runs (tenant_id, created_at DESC, id DESC) WHERE dead_letter AND redriven_at IS NULL`,
    );
    await q.query(`CREATE INDEX runs_tenant_trigger_created_idx ON runs (tenant_id, trigger, created_at DESC, id DESC)`);

    await q.query(`ALTER TABLE run_attempts ADD COLUMN shard_index integer NOT NULL DEFAULT 0, ADD COLUMN http_status integer`);
    await q.query(`ALTER TABLE run_attempts DROP CONSTRAINT run_attempts_run_id_attempt_key`);
    await q.query(`ALTER TABLE run_attempts ADD CONSTRAINT run_attempts_run_shard_attempt_key UNIQUE (run_id, shard_index, attempt)`);

    await q.query(`
      CREATE TABLE run_shards (
        run_id uuid NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        shard_index integer NOT NULL CHECK (shard_index >= 0),
        tenant_id uuid NOT NULL REFERENCES tenants(id),
        status text NOT NULL CHECK (status IN ('succeeded', 'failed', 'cancelled', 'timed_out')),
        attempts integer NOT NULL,
        exit_code integer,
        http_status integer,
        error text,
        stdout text,
        stdout_truncated boolean NOT NULL DEFAULT false,
        stderr text,
        stderr_truncated boolean NOT NULL DEFAULT false,
        finished_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (run_id, shard_index)
      )`);

    await q.query(`
      CREATE TABLE alert_states (
        task_id uuid PRIMARY KEY REFERENCES tasks(id),
        tenant_id uuid NOT NULL REFERENCES tenants(id),
        failing boolean NOT NULL DEFAULT false,
        last_alert_at timestamptz,
        last_alert_run_id uuid,
        last_alert_suppressed integer NOT NULL DEFAULT 0,
        last_counted_run_id uuid,
        suppressed integer NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE alert_states`);
    await q.query(`DROP TABLE run_shards`);
    await q.query(`ALTER TABLE run_attempts DROP CONSTRAINT run_attempts_run_shard_attempt_key`);
    await q.query(`ALTER TABLE run_attempts ADD CONSTRAINT run_attempts_run_id_attempt_key UNIQUE (run_id, attempt)`);
    await q.query(`ALTER TABLE run_attempts DROP COLUMN shard_index, DROP COLUMN http_status`);
    await q.query(`DROP INDEX runs_tenant_trigger_created_idx`);
    await q.query(`DROP INDEX runs_dead_letters_idx`);
    await q.query(`DROP INDEX runs_tenant_waiting_idx`);
    await q.query(`DROP INDEX runs_tenant_admitted_idx`);
    await q.query(`
      ALTER TABLE runs DROP COLUMN overrides, DROP COLUMN request_hash, DROP COLUMN retry_of_run_id, DROP COLUMN priority,
        DROP COLUMN shard_count, DROP COLUMN admitted_at, DROP COLUMN http_status, DROP COLUMN dead_letter,
        DROP COLUMN redriven_at, DROP COLUMN redriven_by_run_id`);
    await q.query(`ALTER TABLE tenants DROP COLUMN alert_settings`);
    await q.query(`ALTER TABLE tasks DROP COLUMN secrets, DROP COLUMN secret_names, DROP COLUMN alerts`);
  }
}
