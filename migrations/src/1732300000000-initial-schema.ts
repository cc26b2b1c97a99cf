import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Tenants, API keys, tasks, runs with their attempts, and the audit log. */
export class InitialSchema1732300000000 implements MigrationInterface {
  name = 'InitialSchema1732300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE tenants (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
        name text NOT NULL,
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
        max_concurrent_runs integer NOT NULL DEFAULT 100 CHECK (max_concurrent_runs > 0),
        max_tasks integer NOT NULL DEFAULT 1000 CHECK (max_tasks > 0),
        rate_limit_per_minute integer NOT NULL DEFAULT 600 CHECK (rate_limit_per_minute > 0),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE api_keys (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL REFERENCES tenants(id),
        name text NOT NULL,
        prefix text NOT NULL UNIQUE,
        secret_hash text NOT NULL,
        role text NOT NULL CHECK (role IN ('admin', 'operator', 'readonly', 'custom')),
        permissions text[] NOT NULL DEFAULT '{}',
        platform_admin boolean NOT NULL DEFAULT false,
        expires_at timestamptz,
        revoked_at timestamptz,
        last_used_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX api_keys_tenant_created_idx ON api_keys (tenant_id, created_at DESC, id DESC)`);
    await q.query(`
      CREATE TABLE tasks (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL REFERENCES tenants(id),
        name text NOT NULL,
        description text,
        executor text NOT NULL CHECK (executor IN ('shell', 'http')),
        spec jsonb NOT NULL,
        timeout_seconds integer NOT NULL CHECK (timeout_seconds > 0),
        retry_policy jsonb NOT NULL,
        priority integer NOT NULL DEFAULT 0,
        tags text[] NOT NULL DEFAULT '{}',
        metadata jsonb NOT NULL DEFAULT '{}',
        shard_count integer NOT NULL DEFAULT 1 CHECK (shard_count > 0),
        enabled boolean NOT NULL DEFAULT true,
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz
      )`);
    await q.query(`CREATE UNIQUE INDEX tasks_tenant_name_uq ON tasks (tenant_id, name) WHERE deleted_at IS NULL`);
    await q.query(`CREATE INDEX tasks_tenant_created_idx ON tasks (tenant_id, created_at DESC, id DESC)`);
    await q.query(`
      CREATE TABLE runs (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL REFERENCES tenants(id),
        task_id uuid NOT NULL REFERENCES tasks(id),
        task_version integer NOT NULL,
        trigger text NOT NULL CHECK (trigger IN ('manual', 'schedule', 'pipeline', 'retry')),
        status text NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out')),
        attempts integer NOT NULL DEFAULT 0,
        idempotency_key text,
        workflow_id text NOT NULL UNIQUE,
        temporal_run_id text,
        worker_identity text,
        exit_code integer,
        error text,
        stdout text,
        stdout_truncated boolean NOT NULL DEFAULT false,
        stderr text,
        stderr_truncated boolean NOT NULL DEFAULT false,
        queued_at timestamptz NOT NULL DEFAULT now(),
        started_at timestamptz,
        finished_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    // Keyset pagination of run listings: newest first, per tenant, optionally per task or status.
    await q.query(`CREATE INDEX runs_tenant_created_idx ON runs (tenant_id, created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX runs_tenant_task_created_idx ON runs (tenant_id, task_id, created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX runs_tenant_status_created_idx ON runs (tenant_id, status, created_at DESC, id DESC)`);
    await q.query(
      `CREATE UNIQUE INDEX runs_idempotency_uq ON runs (tenant_id, task_id, idempotency_key) WHERE idempotency_key IS NOT NULL`,
    );
    await q.query(`
      CREATE TABLE run_attempts (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        run_id uuid NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        tenant_id uuid NOT NULL REFERENCES tenants(id),
        attempt integer NOT NULL CHECK (attempt > 0),
        status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'timed_out', 'cancelled', 'abandoned')),
        worker_identity text,
        exit_code integer,
        error text,
        stdout text,
        stdout_truncated boolean NOT NULL DEFAULT false,
        stderr text,
        stderr_truncated boolean NOT NULL DEFAULT false,
        started_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz,
        UNIQUE (run_id, attempt)
      )`);
    await q.query(`
      CREATE TABLE audit_events (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid REFERENCES tenants(id),
        actor_key_id uuid,
        action text NOT NULL,
        target_type text,
        target_id text,
        request_id text,
        outcome text NOT NULL CHECK (outcome IN ('success', 'failure')),
        details jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX audit_events_tenant_created_idx ON audit_events (tenant_id, created_at DESC, id DESC)`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const table of ['audit_events', 'run_attempts', 'runs', 'tasks', 'api_keys', 'tenants']) {
      await q.query(`DROP TABLE ${table}`);
    }
  }
}
