/*
 * What a tenant's shell task could reach on a `npm run dev` machine, checked the way an attacker would try it:
 * - the database roles of the API and the workers (libs/db/src/app-role.ts) against the real PostgreSQL of the
 *   test run, in a schema of their own, migrated here;
 * - the permissions of `.data` (scripts/lib/data-dir.cjs) on a temporary directory;
 * - the embedded PostgreSQL's superuser password (scripts/lib/dev-postgres.cjs), on a cluster made the way earlier
 *   versions made it (password `postgres`) and then started the new way.
 */
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunRecorder } from '@task-scheduler/activities';
import { DEFAULT_RETRY } from '@task-scheduler/contracts';
import type { TaskRunInput } from '@task-scheduler/contracts';
import { API_ROLE_GRANTS, TenantEntity, WORKER_ROLE_GRANTS, createDataSource, ensureAppRole, runMigrations } from '@task-scheduler/db';
import type { AppRoleOptions } from '@task-scheduler/db';
import { Client } from 'pg';

/* eslint-disable @typescript-eslint/no-require-imports */
const stack = require('../../scripts/lib/local-stack.cjs');
const { secureDataDir } = require('../../scripts/lib/data-dir.cjs');
const devPostgres = require('../../scripts/lib/dev-postgres.cjs');
/* eslint-enable @typescript-eslint/no-require-imports */

const run = `${Date.now()}_${randomBytes(3).toString('hex')}`;
const SCHEMA = `ts_hardening_${run}`;
const APP_ROLE = `ts_app_${run}`;
const WORKER_ROLE = `ts_worker_${run}`;
/** What an attacker would try to create; dropped at the end in case a regression let it through. */
const EVIL_ROLE = `ts_evil_${run}`;
const APP_PASSWORD = randomBytes(18).toString('hex');
const WORKER_PASSWORD = randomBytes(18).toString('hex');

/** The test database's URL with another user and/or search_path. */
function urlFor(base: string, opts: { user?: string; password?: string; schema?: string }): string {
  const u = new URL(base);
  if (opts.user) u.username = opts.user;
  if (opts.password) u.password = opts.password;
  if (opts.schema) u.searchParams.set('options', `-c search_path=${opts.schema}`);
  return u.toString();
}

const baseUrl = (): string => {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is not set: run this through the integration project (global setup)');
  return url;
};

async function connect(url: string): Promise<Client> {
  const c = new Client({ connectionString: url });
  await c.connect();
  return c;
}

/** Runs `sql` and expects PostgreSQL to refuse it for lack of privilege (SQLSTATE 42501), not for any other reason. */
async function expectDenied(c: Client, sql: string): Promise<void> {
  let error: { code?: string } | null = null;
  try {
    await c.query(sql);
  } catch (err) {
    error = err as { code?: string };
  }
  expect({ sql, code: error?.code }).toEqual({ sql, code: '42501' });
}

let owner: Client;

beforeAll(async () => {
  owner = await connect(baseUrl());
  await owner.query(`CREATE SCHEMA "${SCHEMA}"`);
  const ds = createDataSource({
    url: urlFor(baseUrl(), { schema: SCHEMA }),
    applicationName: 'task-scheduler-test-hardening',
    poolSize: 2,
  });
  await ds.initialize();
  try {
    await runMigrations(ds);
  } finally {
    await ds.destroy();
  }
  const role = (r: string, password: string, grants: AppRoleOptions['grants']): AppRoleOptions => ({
    role: r,
    password,
    schema: SCHEMA,
    grants,
  });
  await ensureAppRole(owner, role(APP_ROLE, APP_PASSWORD, API_ROLE_GRANTS));
  await ensureAppRole(owner, role(WORKER_ROLE, WORKER_PASSWORD, WORKER_ROLE_GRANTS));
  // A table created after the grants, as a later migration would: the API role must get it through default privileges.
  await owner.query(`CREATE TABLE "${SCHEMA}".later_things (id bigserial PRIMARY KEY, note text NOT NULL)`);
});

afterAll(async () => {
  if (!owner) return;
  await owner.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
  for (const r of [APP_ROLE, WORKER_ROLE, EVIL_ROLE]) {
    const { rowCount } = await owner.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [r]);
    if (!rowCount) continue;
    // Takes back its CONNECT on the database and the default privileges, which would otherwise keep the role alive.
    await owner.query(`DROP OWNED BY "${r}"`);
    await owner.query(`DROP ROLE "${r}"`);
  }
  await owner.end();
});

describe('the API role', () => {
  let app: Client;
  beforeAll(async () => {
    app = await connect(urlFor(baseUrl(), { user: APP_ROLE, password: APP_PASSWORD, schema: SCHEMA }));
  });
  afterAll(async () => app?.end());

  test('is no superuser and holds no role attribute that widens it', async () => {
    const { rows } = await app.query(
      `SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = current_user`,
    );
    expect(rows).toEqual([{ rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolreplication: false, rolbypassrls: false }]);
    const owned = await app.query(
      `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)`,
      [SCHEMA],
    );
    expect(owned.rows).toEqual([]);
  });

  test('cannot change the schema, make roles, read password hashes or run programs', async () => {
    await expectDenied(app, 'CREATE TABLE evil (id int)');
    await expectDenied(app, `CREATE TABLE "${SCHEMA}".evil (id int)`);
    await expectDenied(app, `CREATE FUNCTION "${SCHEMA}".evil() RETURNS int LANGUAGE sql AS 'SELECT 1'`);
    await expectDenied(app, 'CREATE SCHEMA evil');
    await expectDenied(app, 'ALTER TABLE tenants ADD COLUMN evil int');
    await expectDenied(app, 'ALTER TABLE api_keys DISABLE TRIGGER ALL');
    await expectDenied(app, 'DROP TABLE runs');
    await expectDenied(app, 'TRUNCATE audit_events');
    await expectDenied(app, 'CREATE INDEX evil ON tasks (name)');
    await expectDenied(app, `CREATE ROLE "${EVIL_ROLE}" LOGIN`);
    await expectDenied(app, `CREATE ROLE "${EVIL_ROLE}" LOGIN SUPERUSER PASSWORD 'x'`);
    await expectDenied(app, `ALTER ROLE current_user SUPERUSER`);
    await expectDenied(app, 'SELECT rolpassword FROM pg_authid');
    await expectDenied(app, `COPY (SELECT 1) TO PROGRAM 'id'`);
    await expectDenied(app, `SELECT pg_read_file('/etc/passwd')`);
    await expectDenied(app, `SELECT pg_ls_dir('.')`);
    await expectDenied(app, `ALTER SYSTEM SET log_statement = 'all'`);
  });

  test('may read but not rewrite the migration history', async () => {
    const { rows } = await app.query('SELECT count(*)::int AS n FROM schema_migrations');
    expect(rows[0].n).toBeGreaterThan(0);
    await expectDenied(app, 'DELETE FROM schema_migrations');
    await expectDenied(app, `INSERT INTO schema_migrations (timestamp, name) VALUES (1, 'evil')`);
  });

  test('may read and delete stored run output (retention) but not write it', async () => {
    expect((await app.query('SELECT count(*)::int AS n FROM run_output_chunks')).rows).toEqual([{ n: 0 }]);
    await app.query(`DELETE FROM run_output_chunks WHERE run_id = gen_random_uuid()`);
    await expectDenied(
      app,
      `INSERT INTO run_output_chunks (run_id, tenant_id, shard_index, attempt, seq, stream, data)
       SELECT gen_random_uuid(), id, 0, 1, 0, 'stdout', 'forged' FROM tenants LIMIT 1`,
    );
    await expectDenied(app, `UPDATE run_output_chunks SET data = 'forged'`);
  });

  test('reads and writes rows of the tables migrations made, and of tables made after its grants', async () => {
    const slug = `hardening-${randomBytes(3).toString('hex')}`;
    const ins = await app.query(`INSERT INTO tenants (slug, name) VALUES ($1, 'before') RETURNING id`, [slug]);
    const id = ins.rows[0].id;
    await app.query(`UPDATE tenants SET name = 'after' WHERE id = $1`, [id]);
    expect((await app.query('SELECT name FROM tenants WHERE id = $1', [id])).rows).toEqual([{ name: 'after' }]);
    await app.query('DELETE FROM tenants WHERE id = $1', [id]);
    expect((await app.query('SELECT 1 FROM tenants WHERE id = $1', [id])).rowCount).toBe(0);

    const later = await app.query(`INSERT INTO later_things (note) VALUES ('a') RETURNING id`);
    await app.query(`UPDATE later_things SET note = 'b' WHERE id = $1`, [later.rows[0].id]);
    expect((await app.query('SELECT note FROM later_things')).rows).toEqual([{ note: 'b' }]);
    await app.query('DELETE FROM later_things');
    await expectDenied(app, 'DROP TABLE later_things');
  });

  test("is all the product's data source needs: it connects, queries and finds no migration pending", async () => {
    const ds = createDataSource({
      url: urlFor(baseUrl(), { user: APP_ROLE, password: APP_PASSWORD, schema: SCHEMA }),
      applicationName: 'task-scheduler-test-hardening-app',
      poolSize: 1,
    });
    await ds.initialize();
    try {
      expect(await ds.getRepository(TenantEntity).count()).toBeGreaterThanOrEqual(0);
      expect(await ds.showMigrations()).toBe(false);
    } finally {
      await ds.destroy();
    }
  });
});

describe('the worker role', () => {
  let worker: Client;
  beforeAll(async () => {
    worker = await connect(urlFor(baseUrl(), { user: WORKER_ROLE, password: WORKER_PASSWORD, schema: SCHEMA }));
  });
  afterAll(async () => worker?.end());

  test('records a whole run through RunRecorder, alerts included (the legacy webhook and an alert rule)', async () => {
    const tenant = await owner.query(`INSERT INTO "${SCHEMA}".tenants (slug, name) VALUES ($1, 'w') RETURNING id`, [
      `worker-${randomBytes(3).toString('hex')}`,
    ]);
    const tenantId: string = tenant.rows[0].id;
    const task = await owner.query(
      `INSERT INTO "${SCHEMA}".tasks (tenant_id, name, executor, spec, timeout_seconds, retry_policy, alerts)
       VALUES ($1, 'job', 'shell', '{}', 60, '{}', $2) RETURNING id`,
      [tenantId, JSON.stringify({ webhookUrl: 'https://alerts.example/hook' })],
    );
    const taskId: string = task.rows[0].id;
    const channel = await owner.query(
      `INSERT INTO "${SCHEMA}".alert_channels (tenant_id, name, type, url) VALUES ($1, 'hook', 'webhook', 'https://alerts.example/rules') RETURNING id`,
      [tenantId],
    );
    await owner.query(
      `INSERT INTO "${SCHEMA}".alert_rules (tenant_id, name, kind, task_id, failures, channel_id) VALUES ($1, 'job-failing', 'consecutive_failures', $2, 1, $3)`,
      [tenantId, taskId, channel.rows[0].id],
    );

    const ds = createDataSource({
      url: urlFor(baseUrl(), { user: WORKER_ROLE, password: WORKER_PASSWORD, schema: SCHEMA }),
      applicationName: 'task-scheduler-test-hardening-worker',
      poolSize: 2,
    });
    await ds.initialize();
    try {
      const recorder = new RunRecorder(ds);
      const runId = (await owner.query('SELECT gen_random_uuid() AS id')).rows[0].id as string;
      const input: TaskRunInput & { runId: string } = {
        runId,
        tenantId,
        taskId,
        taskVersion: 1,
        trigger: 'manual',
        executor: 'shell',
        timeoutSeconds: 60,
        retry: DEFAULT_RETRY,
        shellTaskQueue: 'unused',
      };
      expect(await recorder.ensureRun(input, `run-${runId}`, 'temporal-run')).toEqual({ duplicateOf: null });
      expect(await recorder.acquireSlot(runId, tenantId)).toBe(true);
      await recorder.startAttempt({ runId, tenantId, shardIndex: 0, attempt: 1, workerIdentity: 'w1' });
      const failed = { exitCode: 1, httpStatus: null, error: 'exit 1', stdout: null, stderr: null };
      await recorder.finishAttempt({ runId, shardIndex: 0, attempt: 1, status: 'failed', ...failed });
      const fin = await recorder.finalizeRun({
        runId,
        status: 'failed',
        attempts: 1,
        ...failed,
        shards: [{ shardIndex: 0, status: 'failed', attempts: 1, ...failed }],
      });
      expect(fin.attempts).toBe(1);
      // The rule counted the run with its final record, under the worker's grants: one alert, one notification queued.
      const opened = await owner.query(
        `SELECT a.state, n.event, n.status FROM "${SCHEMA}".alerts a JOIN "${SCHEMA}".alert_notifications n ON n.alert_id = a.id WHERE a.tenant_id = $1`,
        [tenantId],
      );
      expect(opened.rows).toEqual([{ state: 'firing', event: 'firing', status: 'pending' }]);
      expect(await recorder.planAlert(runId)).toMatchObject({ kind: 'failure', url: 'https://alerts.example/hook' });

      // A fire of a task disabled by now is recorded cancelled without running, also with the worker's narrow grants.
      await owner.query(`UPDATE "${SCHEMA}".tasks SET enabled = false WHERE id = $1`, [taskId]);
      const fireId = (await owner.query('SELECT gen_random_uuid() AS id')).rows[0].id as string;
      const fire = { ...input, runId: fireId, trigger: 'schedule' as const };
      expect(await recorder.ensureRun(fire, `run-${fireId}`, 'temporal-fire')).toEqual({ duplicateOf: fireId });
      expect(await recorder.ensureRun(fire, `run-${fireId}`, 'temporal-fire')).toEqual({ duplicateOf: fireId }); // a retried activity
      const refused = await owner.query(`SELECT status, error, admitted_at FROM "${SCHEMA}".runs WHERE id = $1`, [fireId]);
      expect(refused.rows).toEqual([{ status: 'cancelled', error: expect.stringMatching(/^task_disabled: /), admitted_at: null }]);
      await owner.query(`DELETE FROM "${SCHEMA}".runs WHERE id = $1`, [fireId]);
    } finally {
      await ds.destroy();
    }
    const { rows } = await owner.query(`SELECT status, dead_letter FROM "${SCHEMA}".runs WHERE task_id = $1`, [taskId]);
    expect(rows).toEqual([{ status: 'failed', dead_letter: true }]);
  });

  test('reaches neither API keys nor anything outside run records and what a step run is built from', async () => {
    await expectDenied(worker, 'SELECT * FROM api_keys');
    await expectDenied(
      worker,
      `INSERT INTO api_keys (tenant_id, name, prefix, secret_hash, role) SELECT id, 'x', 'x', 'x', 'admin' FROM tenants`,
    );
    // A pipeline step's run is built by the worker, so it reads a task's spec and sealed secrets (as Temporal
    // histories hold them); the key that opens them is SECRETS_KEY, never in the database.
    await expectDenied(worker, 'SELECT secret_names, metadata FROM tasks');
    await expectDenied(worker, 'SELECT description FROM pipelines');
    await expectDenied(worker, `UPDATE pipelines SET name = 'x'`);
    await expectDenied(worker, 'SELECT * FROM audit_events');
    await expectDenied(worker, `UPDATE tenants SET max_concurrent_runs = 100000`);
    await expectDenied(worker, `UPDATE tasks SET name = 'x'`);
    await expectDenied(worker, `UPDATE alert_rules SET enabled = false`);
    await expectDenied(worker, 'SELECT * FROM alert_channels');
    await expectDenied(worker, 'DELETE FROM runs');
    await expectDenied(worker, 'SELECT * FROM later_things');
    await expectDenied(worker, `CREATE TABLE "${SCHEMA}".evil (id int)`);
    await expectDenied(worker, `COPY (SELECT 1) TO PROGRAM 'id'`);
  });
});

describe('ensureAppRole', () => {
  test('converges: a second call changes nothing, other grants replace the earlier ones', async () => {
    const probe = `ts_probe_${run}`;
    try {
      await ensureAppRole(owner, { role: probe, schema: SCHEMA });
      await ensureAppRole(owner, { role: probe, schema: SCHEMA });
      const can = async (priv: string, table: string): Promise<boolean> =>
        (await owner.query('SELECT has_table_privilege($1, $2, $3) AS ok', [probe, `"${SCHEMA}".${table}`, priv])).rows[0].ok;
      expect(await can('SELECT', 'api_keys')).toBe(true);
      await ensureAppRole(owner, { role: probe, schema: SCHEMA, grants: WORKER_ROLE_GRANTS });
      expect(await can('SELECT', 'api_keys')).toBe(false);
      expect(await can('INSERT', 'runs')).toBe(true);
      expect(await can('DELETE', 'runs')).toBe(false);
      await owner.query(`CREATE TABLE "${SCHEMA}".after_switch (id int)`);
      expect(await can('SELECT', 'after_switch')).toBe(false);
    } finally {
      await owner.query(`DROP TABLE IF EXISTS "${SCHEMA}".after_switch`);
      await owner.query(`DROP OWNED BY "${probe}"`).catch(() => undefined);
      await owner.query(`DROP ROLE IF EXISTS "${probe}"`);
    }
  });

  test('refuses a role that owns a table of the schema, and leaves it as it was', async () => {
    const probe = `ts_owner_probe_${run}`;
    try {
      await owner.query(`CREATE ROLE "${probe}" NOLOGIN`);
      await owner.query(`CREATE TABLE "${SCHEMA}".owned_by_probe (id int)`);
      await owner.query(`ALTER TABLE "${SCHEMA}".owned_by_probe OWNER TO "${probe}"`);
      await expect(ensureAppRole(owner, { role: probe, password: 'x', schema: SCHEMA })).rejects.toThrow(/owns owned_by_probe/);
      const { rows } = await owner.query('SELECT rolcanlogin FROM pg_roles WHERE rolname = $1', [probe]);
      expect(rows).toEqual([{ rolcanlogin: false }]);
    } finally {
      await owner.query(`DROP TABLE IF EXISTS "${SCHEMA}".owned_by_probe`);
      await owner.query(`DROP ROLE IF EXISTS "${probe}"`);
    }
  });
});

describe('.data permissions', () => {
  test('directories become 0700 and files 0600; what symbolic links point to is left alone', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ts-data-dir-'));
    const outside = mkdtempSync(join(tmpdir(), 'ts-data-outside-'));
    try {
      chmodSync(dir, 0o755);
      for (const f of ['temporal.db', 'postgres.log', 'admin-api-key']) writeFileSync(join(dir, f), 'x', { mode: 0o644 });
      mkdirSync(join(dir, 'postgres', 'base'), { recursive: true, mode: 0o755 });
      writeFileSync(join(dir, 'postgres', 'base', '1'), 'x', { mode: 0o644 });
      writeFileSync(join(outside, 'target'), 'x', { mode: 0o644 });
      symlinkSync(join(outside, 'target'), join(dir, 'link'));

      const changed: string[] = secureDataDir(dir);
      const mode = (p: string): string => (statSync(join(dir, p)).mode & 0o7777).toString(8);
      expect(mode('.')).toBe('700');
      for (const f of ['temporal.db', 'postgres.log', 'admin-api-key', 'postgres/base/1']) expect([f, mode(f)]).toEqual([f, '600']);
      expect(mode('postgres')).toBe('700');
      expect(mode('postgres/base')).toBe('700');
      expect((statSync(join(outside, 'target')).mode & 0o777).toString(8)).toBe('644');
      expect(changed).toHaveLength(7);
      expect(secureDataDir(dir)).toEqual([]);

      // A service user's group may pass through the top, not list or read it.
      secureDataDir(dir, { traverseGid: process.getgid?.() ?? 0 });
      expect(mode('.')).toBe('710');
      expect(mode('temporal.db')).toBe('600');
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(outside, { recursive: true, force: true });
    }
  });
});

describe('embedded PostgreSQL of npm run dev', () => {
  test('a cluster of an earlier version (password postgres) gets a random password once, kept for later starts', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ts-dev-pg-'));
    // As earlier versions left .data: readable by all, so that the server's system user could reach its directory.
    chmodSync(dataDir, 0o755);
    const port: number = await stack.freePort();
    const legacyUrl = `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
    const stops: (() => Promise<void>)[] = [];
    try {
      const legacy = await stack.spawnEmbeddedPostgres({ dataDir: join(dataDir, 'postgres'), port, logFile: join(dataDir, 'legacy.log') });
      await legacy.stop();

      const runAs = devPostgres.postgresSystemUser();
      secureDataDir(dataDir, { traverseGid: runAs ? runAs.gid : null });
      const pg = await devPostgres.startDevPostgres({ dataDir, port, runAs });
      stops.push(pg.stop);
      expect(pg.rotated).toBe(true);
      const passwordFile = join(dataDir, 'postgres-password');
      expect((statSync(passwordFile).mode & 0o777).toString(8)).toBe('600');
      const password = readFileSync(passwordFile, 'utf8').trim();
      expect(password).toMatch(/^[0-9a-f]{48}$/);
      expect(pg.url).toContain(password);

      await expect(connect(legacyUrl)).rejects.toMatchObject({ code: '28P01' });
      const su = await connect(pg.url);
      try {
        expect((await su.query('SELECT rolsuper FROM pg_roles WHERE rolname = current_user')).rows).toEqual([{ rolsuper: true }]);
        // With a real password check (the test database may trust local connections): the app role's password works, no other.
        await ensureAppRole(su, { role: 'task_scheduler_app', password: 'app-secret', schema: 'public' });
      } finally {
        await su.end();
      }
      const app = await connect(`postgres://task_scheduler_app:app-secret@127.0.0.1:${port}/postgres`);
      expect((await app.query('SELECT rolsuper FROM pg_roles WHERE rolname = current_user')).rows).toEqual([{ rolsuper: false }]);
      await app.end();
      await expect(connect(`postgres://task_scheduler_app:wrong@127.0.0.1:${port}/postgres`)).rejects.toMatchObject({ code: '28P01' });

      await stops.pop()?.();
      const again = await devPostgres.startDevPostgres({ dataDir, port, runAs });
      stops.push(again.stop);
      expect(again.rotated).toBe(false);
      expect(again.url).toBe(pg.url);

      // A start that died after ALTER ROLE but before keeping the file: the pending password is tried and kept.
      await stops.pop()?.();
      renameSync(passwordFile, `${passwordFile}.new`);
      const recovered = await devPostgres.startDevPostgres({ dataDir, port, runAs });
      stops.push(recovered.stop);
      expect(recovered.url).toBe(pg.url);
      expect(readFileSync(passwordFile, 'utf8').trim()).toBe(password);
      expect(existsSync(`${passwordFile}.new`)).toBe(false);
      const top = statSync(dataDir).mode & 0o777;
      expect(top & 0o007).toBe(0);
    } finally {
      for (const stop of stops.reverse()) await stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
