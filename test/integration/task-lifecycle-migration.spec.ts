/* The task-lifecycle migration against the real PostgreSQL of the test run, in a schema of its own: tasks that
 * existed before it get a version row whose snapshot is exactly what the API writes for a version (the same
 * definition GET shows, secret names only), and it rolls back cleanly. */
import { randomBytes } from 'node:crypto';
import type { TaskEntity } from '@task-scheduler/db';
import { MIGRATIONS } from '@task-scheduler/migrations';
import { Client } from 'pg';
import { canonicalJson } from '../../apps/api/src/common/versioning';
import { definitionOf } from '../../apps/api/src/tasks/task-definition';

const SCHEMA = `ts_lifecycle_mig_${Date.now()}_${randomBytes(3).toString('hex')}`;
let client: Client;

beforeAll(async () => {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is not set: run this through the integration project (global setup)');
  client = new Client({ connectionString: url });
  await client.connect();
  await client.query(`CREATE SCHEMA ${SCHEMA}`);
  await client.query(`SET search_path TO ${SCHEMA}, public`);
});
afterAll(async () => {
  await client?.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  await client?.end();
});

const runner = { query: async (sql: string, params?: unknown[]) => (await client.query(sql, params)).rows };

test('existing tasks get their current version with the API snapshot, secrets as names only; down drops it', async () => {
  const at = MIGRATIONS.findIndex((m) => m.name === 'TaskLifecycle1732800000000');
  expect(at).toBeGreaterThan(0);
  const lifecycle = MIGRATIONS[at];
  for (const M of MIGRATIONS.slice(0, at)) await new M().up(runner as never);
  const [{ id: tenant }] = await runner.query(`INSERT INTO tenants (slug, name) VALUES ('t', 't') RETURNING id`);
  await runner.query(
    `INSERT INTO tasks (tenant_id, name, description, executor, spec, timeout_seconds, retry_policy, secrets, secret_names, version,
                        tags, metadata, alerts, enabled, deleted_at)
     VALUES ($1, 'sh', 'd', 'shell', '{"script":"echo","env":{"A":"1"}}', 60, '{"maximumAttempts":3}', 'v1.sealed', '{"env":["TOKEN","B"]}',
             3, '{a,b}', '{"k":{"n":1}}', '{"webhookUrl":"https://h.example.com"}', false, NULL),
            ($1, 'web', NULL, 'http', '{"method":"GET","url":"https://x.example.com"}', 60, '{}', 'v1.sealed', '{"headers":["Authorization"]}',
             1, '{}', '{}', NULL, true, NULL),
            ($1, 'plain', NULL, 'shell', '{"command":"true","args":[]}', 60, '{}', NULL, '{}', 2, '{}', '{}', NULL, true, now())`,
    [tenant],
  );
  await new lifecycle().up(runner as never);

  const tasks = await runner.query(`SELECT * FROM tasks ORDER BY name`);
  const versions = await runner.query(`SELECT * FROM task_versions`);
  expect(versions).toHaveLength(3);
  for (const t of tasks) {
    const v = versions.find((x) => x.task_id === t.id);
    expect([t.name, v.version, v.action, v.actor, v.actor_key_id, v.changed_fields]).toEqual([
      t.name,
      t.version,
      'migrated',
      null,
      null,
      [],
    ]);
    const entity = {
      id: t.id,
      tenantId: t.tenant_id,
      name: t.name,
      description: t.description,
      executor: t.executor,
      spec: t.spec,
      secrets: t.secrets,
      secretNames: t.secret_names,
      alerts: t.alerts,
      timeoutSeconds: t.timeout_seconds,
      retryPolicy: t.retry_policy,
      priority: t.priority,
      tags: t.tags,
      metadata: t.metadata,
      shardCount: t.shard_count,
      enabled: t.enabled,
      version: t.version,
      createdAt: t.created_at,
      updatedAt: t.updated_at,
      deletedAt: t.deleted_at,
    } as TaskEntity;
    expect(canonicalJson(v.definition)).toBe(canonicalJson(definitionOf(entity)));
    expect(JSON.stringify(v.definition)).not.toContain('sealed');
  }
  expect(versions.find((v) => v.definition.name === 'sh').definition.shell.secretEnv).toEqual({ TOKEN: '***', B: '***' });

  await new lifecycle().down(runner as never);
  const [{ exists }] = await runner.query(`SELECT to_regclass('task_versions') IS NOT NULL AS exists`);
  expect(exists).toBe(false);
});
