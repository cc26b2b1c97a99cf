import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Pipelines: DAGs of task steps with their versions, their runs and the state
 * of each step in a run. A step's task runs are ordinary `runs` rows that name
 * their pipeline run, step and item, and carry the outputs the step's
 * dependants read (those columns: `PipelineStepRuns1733000000001`, which
 * changes `runs` outside a transaction). A schedule fires either a task or a
 * pipeline.
 */
export class Pipelines1733000000000 implements MigrationInterface {
  name = 'Pipelines1733000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE pipelines (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL REFERENCES tenants(id),
        name text NOT NULL,
        description text,
        version integer NOT NULL CHECK (version > 0),
        definition jsonb NOT NULL,
        alerts jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz
      )`);
    await q.query(`CREATE UNIQUE INDEX pipelines_tenant_name_uq ON pipelines (tenant_id, name) WHERE deleted_at IS NULL`);
    await q.query(`CREATE INDEX pipelines_tenant_created_idx ON pipelines (tenant_id, created_at DESC, id DESC)`);
    // created_at from clock_timestamp() as for task versions: versions are written under the pipeline's row lock.
    await q.query(`
      CREATE TABLE pipeline_versions (
        pipeline_id uuid NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
        tenant_id uuid NOT NULL REFERENCES tenants(id),
        version integer NOT NULL CHECK (version > 0),
        -- PIPELINE_VERSION_ACTIONS (libs/db pipeline-version.entity.ts); a migration keeps the list it was written with.
        action text NOT NULL CHECK (action IN ('create', 'update')),
        changed_fields text[] NOT NULL DEFAULT '{}',
        name text NOT NULL,
        description text,
        definition jsonb NOT NULL,
        actor_key_id uuid,
        actor text,
        request_id text,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (pipeline_id, version)
      )`);
    // Status and trigger lists: PIPELINE_RUN_STATUSES and PIPELINE_RUN_TRIGGERS (libs/contracts pipeline.ts) when written.
    await q.query(`
      CREATE TABLE pipeline_runs (
        id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants(id),
        pipeline_id uuid NOT NULL REFERENCES pipelines(id),
        pipeline_version integer NOT NULL,
        trigger text NOT NULL CHECK (trigger IN ('manual', 'schedule', 'retry')),
        status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
        params jsonb NOT NULL DEFAULT '{}',
        idempotency_key text,
        request_hash text,
        retry_of_pipeline_run_id uuid REFERENCES pipeline_runs(id),
        schedule_id uuid REFERENCES schedules(id),
        scheduled_at timestamptz,
        workflow_id text NOT NULL,
        temporal_run_id text,
        error text,
        queued_at timestamptz NOT NULL DEFAULT now(),
        started_at timestamptz,
        finished_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(
      `CREATE UNIQUE INDEX pipeline_runs_idempotency_uq ON pipeline_runs (tenant_id, pipeline_id, idempotency_key)
        WHERE idempotency_key IS NOT NULL`,
    );
    // One fire of a schedule makes one pipeline run, as for task runs (runs_schedule_fire_uq).
    await q.query(
      `CREATE UNIQUE INDEX pipeline_runs_schedule_fire_uq ON pipeline_runs (schedule_id, scheduled_at)
        WHERE schedule_id IS NOT NULL AND scheduled_at IS NOT NULL`,
    );
    await q.query(`CREATE INDEX pipeline_runs_tenant_created_idx ON pipeline_runs (tenant_id, created_at DESC, id DESC)`);
    await q.query(
      `CREATE INDEX pipeline_runs_tenant_pipeline_created_idx ON pipeline_runs (tenant_id, pipeline_id, created_at DESC, id DESC)`,
    );
    await q.query(`CREATE INDEX pipeline_runs_tenant_status_created_idx ON pipeline_runs (tenant_id, status, created_at DESC, id DESC)`);
    // Status and reason lists: STEP_STATUSES and STEP_REASONS (libs/contracts pipeline.ts) when written.
    await q.query(`
      CREATE TABLE pipeline_run_steps (
        pipeline_run_id uuid NOT NULL REFERENCES pipeline_runs(id) ON DELETE CASCADE,
        step_key text NOT NULL,
        tenant_id uuid NOT NULL REFERENCES tenants(id),
        task_id uuid NOT NULL REFERENCES tasks(id),
        status text NOT NULL DEFAULT 'pending'
          CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'skipped', 'cancelled')),
        reason text CHECK (reason IN ('ran', 'reused', 'trigger_rule', 'condition_false', 'empty_list', 'fail_fast',
                                      'pipeline_cancelled', 'prepare_failed')),
        error text,
        item_count integer,
        items jsonb,
        outputs jsonb,
        reused_from_pipeline_run_id uuid REFERENCES pipeline_runs(id),
        started_at timestamptz,
        finished_at timestamptz,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (pipeline_run_id, step_key)
      )`);
    // Failure/recovery alert state per pipeline, as alert_states is per task; same columns (*_run_id: a pipeline run), one planner.
    await q.query(`
      CREATE TABLE pipeline_alert_states (
        pipeline_id uuid PRIMARY KEY REFERENCES pipelines(id) ON DELETE CASCADE,
        tenant_id uuid NOT NULL REFERENCES tenants(id),
        failing boolean NOT NULL DEFAULT false,
        last_alert_at timestamptz,
        last_alert_run_id uuid,
        last_alert_suppressed integer NOT NULL DEFAULT 0,
        last_counted_run_id uuid,
        suppressed integer NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      ALTER TABLE schedules
        ADD COLUMN pipeline_id uuid REFERENCES pipelines(id),
        ADD COLUMN params jsonb,
        ALTER COLUMN task_id DROP NOT NULL,
        ADD CONSTRAINT schedules_target_ck CHECK ((task_id IS NULL) <> (pipeline_id IS NULL))`);
    await q.query(
      `CREATE INDEX schedules_pipeline_live_idx ON schedules (pipeline_id) WHERE deleted_at IS NULL AND pipeline_id IS NOT NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    // Pipeline schedules cannot exist without pipelines: they go, with their history, before task_id is required again.
    await q.query(`DELETE FROM schedule_events WHERE schedule_id IN (SELECT id FROM schedules WHERE pipeline_id IS NOT NULL)`);
    await q.query(`UPDATE pipeline_runs SET schedule_id = NULL WHERE schedule_id IS NOT NULL`);
    await q.query(`DELETE FROM schedules WHERE pipeline_id IS NOT NULL`);
    await q.query(`DROP INDEX schedules_pipeline_live_idx`);
    await q.query(`
      ALTER TABLE schedules
        DROP CONSTRAINT schedules_target_ck,
        ALTER COLUMN task_id SET NOT NULL,
        DROP COLUMN params,
        DROP COLUMN pipeline_id`);
    await q.query(`DROP TABLE pipeline_alert_states`);
    await q.query(`DROP TABLE pipeline_run_steps`);
    await q.query(`DROP TABLE pipeline_runs`);
    await q.query(`DROP TABLE pipeline_versions`);
    await q.query(`DROP TABLE pipelines`);
  }
}
