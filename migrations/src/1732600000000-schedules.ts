import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Schedules (each mirrored by one Temporal Schedule), business calendars they
 * exclude, and the fire a scheduled run belongs to: (schedule, scheduled
 * time) is unique, so one fire never makes two runs.
 */
export class Schedules1732600000000 implements MigrationInterface {
  name = 'Schedules1732600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE calendars (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL REFERENCES tenants(id),
        name text NOT NULL,
        description text,
        holidays jsonb NOT NULL DEFAULT '[]',
        weekly_windows jsonb NOT NULL DEFAULT '[]',
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz
      )`);
    await q.query(`CREATE UNIQUE INDEX calendars_tenant_name_uq ON calendars (tenant_id, name) WHERE deleted_at IS NULL`);
    await q.query(`CREATE INDEX calendars_tenant_created_idx ON calendars (tenant_id, created_at DESC, id DESC)`);
    await q.query(`
      CREATE TABLE schedules (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL REFERENCES tenants(id),
        task_id uuid NOT NULL REFERENCES tasks(id),
        name text NOT NULL,
        description text,
        spec jsonb NOT NULL,
        policies jsonb NOT NULL,
        exclude_calendar_ids uuid[] NOT NULL DEFAULT '{}',
        paused boolean NOT NULL DEFAULT false,
        pause_note text,
        temporal_schedule_id text NOT NULL UNIQUE,
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        deleted_at timestamptz
      )`);
    await q.query(`CREATE UNIQUE INDEX schedules_tenant_name_uq ON schedules (tenant_id, name) WHERE deleted_at IS NULL`);
    await q.query(`CREATE INDEX schedules_tenant_created_idx ON schedules (tenant_id, created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX schedules_calendars_idx ON schedules USING gin (exclude_calendar_ids) WHERE deleted_at IS NULL`);
    // What happened to a schedule and when: pause history explains fires that did not run.
    await q.query(`
      CREATE TABLE schedule_events (
        id bigserial PRIMARY KEY,
        schedule_id uuid NOT NULL REFERENCES schedules(id),
        tenant_id uuid NOT NULL REFERENCES tenants(id),
        kind text NOT NULL CHECK (kind IN ('created', 'updated', 'paused', 'resumed', 'triggered', 'backfilled', 'deleted', 'repaired')),
        note text,
        details jsonb NOT NULL DEFAULT '{}',
        at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX schedule_events_schedule_at_idx ON schedule_events (schedule_id, at)`);
    await q.query(`ALTER TABLE runs ADD COLUMN schedule_id uuid REFERENCES schedules(id), ADD COLUMN scheduled_at timestamptz`);
    await q.query(`CREATE UNIQUE INDEX runs_schedule_fire_uq ON runs (schedule_id, scheduled_at) WHERE schedule_id IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX runs_schedule_fire_uq`);
    await q.query(`ALTER TABLE runs DROP COLUMN schedule_id, DROP COLUMN scheduled_at`);
    await q.query(`DROP TABLE schedule_events`);
    await q.query(`DROP TABLE schedules`);
    await q.query(`DROP TABLE calendars`);
  }
}
