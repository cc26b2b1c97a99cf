import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Task lifecycle: every version of a task definition (version 1 at create,
 * one more per effective change), with who made it and which fields changed.
 * Existing tasks get a row for their current version. Snapshots hold secret
 * names only, never values.
 */
export class TaskLifecycle1732800000000 implements MigrationInterface {
  name = 'TaskLifecycle1732800000000';

  async up(q: QueryRunner): Promise<void> {
    // created_at defaults to clock_timestamp(), not now(): versions of one task are written under its row lock,
    // so insertion time follows the version order even when the transactions started the other way round.
    await q.query(`
      CREATE TABLE task_versions (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL REFERENCES tenants(id),
        task_id uuid NOT NULL REFERENCES tasks(id),
        version integer NOT NULL CHECK (version > 0),
        -- TASK_VERSION_ACTIONS (libs/db task-version.entity.ts); a migration keeps the list it was written with.
        action text NOT NULL CHECK (action IN ('create', 'update', 'disable', 'enable', 'migrated')),
        changed_fields text[] NOT NULL DEFAULT '{}',
        definition jsonb NOT NULL,
        actor_key_id uuid,
        actor text,
        request_id text,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        UNIQUE (task_id, version)
      )`);
    await q.query(`CREATE INDEX task_versions_task_created_idx ON task_versions (tenant_id, task_id, created_at DESC, id DESC)`);
    // "Which live schedules use this task" (delete, resync after a change).
    await q.query(`CREATE INDEX schedules_task_live_idx ON schedules (task_id) WHERE deleted_at IS NULL`);
    // The current version of every existing task, its definition as the API shows it (secret values as ***).
    await q.query(`
      INSERT INTO task_versions (tenant_id, task_id, version, action, definition, created_at)
      SELECT t.tenant_id, t.id, t.version, 'migrated',
             jsonb_build_object(
               'name', t.name, 'description', t.description, 'executor', t.executor,
               t.executor, t.spec
                 || CASE WHEN t.executor = 'shell' AND jsonb_array_length(coalesce(t.secret_names->'env', '[]')) > 0
                      THEN jsonb_build_object('secretEnv',
                             (SELECT jsonb_object_agg(n, '***') FROM jsonb_array_elements_text(t.secret_names->'env') n))
                      ELSE '{}' END
                 || CASE WHEN t.executor = 'http' AND jsonb_array_length(coalesce(t.secret_names->'headers', '[]')) > 0
                      THEN jsonb_build_object('secretHeaders',
                             (SELECT jsonb_object_agg(n, '***') FROM jsonb_array_elements_text(t.secret_names->'headers') n))
                      ELSE '{}' END,
               'shardCount', t.shard_count, 'alerts', t.alerts, 'timeoutSeconds', t.timeout_seconds,
               'retry', t.retry_policy, 'priority', t.priority, 'tags', to_jsonb(t.tags), 'metadata', t.metadata,
               'enabled', t.enabled),
             t.updated_at
        FROM tasks t`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX schedules_task_live_idx`);
    await q.query(`DROP TABLE task_versions`);
  }
}
