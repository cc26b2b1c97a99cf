/* Retention: finished runs (with attempts, shards and stored output), finished pipeline runs (with steps) and audit
 * events older than a tenant's retention are deleted in batches, archived first; queued and running runs and
 * everything newer stay. Rows are inserted directly with backdated timestamps around each tenant's cutoff. */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { RetentionService } from '../../apps/api/src/retention/retention.service';
import type { RetentionReport, RetentionTable } from '../../apps/api/src/retention/retention.service';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';

const DAY = 86_400_000;
const MINUTE = 60_000;
const PLATFORM_DAYS = 30;
const archiveDir = mkdtempSync(join(tmpdir(), 'retention-'));
let stack: TestStack;

beforeAll(async () => {
  stack = await startStack('retention', {
    workers: false,
    env: { RETENTION_DAYS: String(PLATFORM_DAYS), RETENTION_ARCHIVE_DIR: archiveDir },
  });
});
afterAll(async () => {
  await stack?.stop();
  rmSync(archiveDir, { recursive: true, force: true });
});

interface Seeded {
  tenantId: string;
  slug: string;
  /** Ids expected deleted and kept, per table (attempts by run id, chunks as `<run>/<seq>`). */
  gone: { runs: string[]; pipelineRuns: string[]; audit: string[] };
  kept: { runs: string[]; pipelineRuns: string[]; audit: string[] };
  /** A kept run whose retry_of_run_id points at a deleted one. */
  retryId: string;
}

const ago = (now: Date, ms: number) => new Date(now.getTime() - ms);

/** Rows of one tenant around its cutoff (`days` before `now`). */
async function seed(tenantId: string, slug: string, days: number, now: Date): Promise<Seeded> {
  const db = stack.db;
  const cutoff = ago(now, days * DAY);
  const at = (msAfterCutoff: number) => new Date(cutoff.getTime() + msAfterCutoff);
  const [task] = await db.query(
    `INSERT INTO tasks (tenant_id, name, executor, spec, timeout_seconds, retry_policy)
     VALUES ($1, $2, 'shell', '{}', 60, '{}') RETURNING id`,
    [tenantId, `t-${randomBytes(3).toString('hex')}`],
  );
  const [pipeline] = await db.query(`INSERT INTO pipelines (tenant_id, name, version, definition) VALUES ($1, $2, 1, '{}') RETURNING id`, [
    tenantId,
    `p-${randomBytes(3).toString('hex')}`,
  ]);
  const pipelineRun = async (status: string, created: Date, finished: Date | null): Promise<string> => {
    const id = randomUUID();
    await db.query(
      `INSERT INTO pipeline_runs (id, tenant_id, pipeline_id, pipeline_version, trigger, status, workflow_id,
                                  queued_at, created_at, updated_at, finished_at)
       VALUES ($1, $2, $3, 1, 'manual', $4, $5, $6, $6, $6, $7)`,
      [id, tenantId, pipeline.id, status, `wf-${id}`, created, finished],
    );
    await db.query(
      `INSERT INTO pipeline_run_steps (pipeline_run_id, step_key, tenant_id, task_id, status) VALUES ($1, 'a', $2, $3, 'succeeded')`,
      [id, tenantId, task.id],
    );
    return id;
  };
  const run = async (
    status: string,
    created: Date,
    finished: Date | null,
    extra: { pipelineRunId?: string; retryOf?: string } = {},
  ): Promise<string> => {
    const id = randomUUID();
    await db.query(
      `INSERT INTO runs (id, tenant_id, task_id, task_version, trigger, status, workflow_id, queued_at, created_at,
                         updated_at, finished_at, pipeline_run_id, pipeline_step_key, retry_of_run_id)
       VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $7, $7, $8, $9, $10, $11)`,
      [
        id,
        tenantId,
        task.id,
        extra.pipelineRunId ? 'pipeline' : extra.retryOf ? 'retry' : 'manual',
        status,
        `wf-${id}`,
        created,
        finished,
        extra.pipelineRunId ?? null,
        extra.pipelineRunId ? 'a' : null,
        extra.retryOf ?? null,
      ],
    );
    await db.query(
      `INSERT INTO run_attempts (run_id, tenant_id, attempt, status, started_at, finished_at)
       VALUES ($1, $2, 1, $3, $4, $5)`,
      [id, tenantId, status === 'queued' || status === 'running' ? 'running' : 'failed', created, finished],
    );
    if (status !== 'queued' && status !== 'running') {
      await db.query(
        `INSERT INTO run_shards (run_id, shard_index, tenant_id, status, attempts, finished_at)
         VALUES ($1, 0, $2, $3, 1, $4)`,
        [id, tenantId, status, finished ?? created],
      );
    }
    for (const seq of [0, 1]) {
      await db.query(
        `INSERT INTO run_output_chunks (run_id, tenant_id, shard_index, attempt, seq, stream, data, created_at)
         VALUES ($1, $2, 0, 1, $3, 'stdout', $4, $5)`,
        [id, tenantId, seq, `line ${seq} of ${id}\n`, created],
      );
    }
    return id;
  };
  const audit = async (created: Date): Promise<string> => {
    const [row] = await db.query(
      `INSERT INTO audit_events (tenant_id, action, outcome, created_at) VALUES ($1, 'test.retention', 'success', $2) RETURNING id`,
      [tenantId, created],
    );
    return row.id;
  };

  const oldPipelineRun = await pipelineRun('succeeded', at(-3 * DAY), at(-2 * DAY));
  const runningPipelineRun = await pipelineRun('running', at(-3 * DAY), null);
  const gone = {
    runs: [
      await run('succeeded', at(-2 * DAY), at(-1 * DAY)),
      await run('succeeded', at(-2 * DAY), at(-1 * DAY)),
      await run('failed', at(-2 * 3_600_000), at(-MINUTE)), // finished one minute before the cutoff
      await run('timed_out', at(-3 * DAY), at(-3 * DAY)),
      await run('cancelled', at(-4 * DAY), null), // cancelled before it started: by created_at
      await run('succeeded', at(-2 * DAY), at(-2 * DAY), { pipelineRunId: oldPipelineRun }),
      await run('failed', at(-10 * DAY), at(-10 * DAY)),
    ],
    pipelineRuns: [oldPipelineRun],
    audit: [await audit(at(-MINUTE)), await audit(at(-DAY)), await audit(at(-5 * DAY)), await audit(at(-40 * DAY))],
  };
  const retryId = await run('succeeded', at(DAY), at(DAY), { retryOf: gone.runs[0] });
  const kept = {
    runs: [
      await run('cancelled', at(-2 * 3_600_000), at(MINUTE)), // created before, finished one minute after the cutoff
      await run('succeeded', at(DAY), at(DAY)),
      await run('queued', at(-5 * DAY), null), // old, never final: never deleted
      await run('running', at(-5 * DAY), null),
      await run('succeeded', at(-2 * DAY), at(-2 * DAY), { pipelineRunId: runningPipelineRun }), // its pipeline still runs
      retryId,
    ],
    pipelineRuns: [runningPipelineRun],
    audit: [await audit(at(MINUTE)), await audit(at(DAY))],
  };
  return { tenantId, slug, gone, kept, retryId };
}

async function counts(tenantId: string): Promise<Record<RetentionTable, number>> {
  const [row] = await stack.db.query(
    `SELECT (SELECT count(*) FROM runs WHERE tenant_id = $1)::int AS runs,
            (SELECT count(*) FROM run_attempts WHERE tenant_id = $1)::int AS run_attempts,
            (SELECT count(*) FROM run_shards WHERE tenant_id = $1)::int AS run_shards,
            (SELECT count(*) FROM run_output_chunks WHERE tenant_id = $1)::int AS run_output_chunks,
            (SELECT count(*) FROM pipeline_runs WHERE tenant_id = $1)::int AS pipeline_runs,
            (SELECT count(*) FROM pipeline_run_steps WHERE tenant_id = $1)::int AS pipeline_run_steps,
            (SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND action = 'test.retention')::int AS audit_events`,
    [tenantId],
  );
  return row;
}

/** Rows of one archive file of this pass (several gzip members read as one stream). */
function archived(slug: string, table: string): { id?: string; run_id?: string; seq?: number; pipeline_run_id?: string }[] {
  const files = readdirSync(join(archiveDir, slug)).filter((f) => f.startsWith(`${table}-`));
  expect(files).toHaveLength(1);
  return gunzipSync(readFileSync(join(archiveDir, slug, files[0])))
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

const sorted = (xs: (string | undefined)[]) => [...xs].map(String).sort();

async function newTenant(prefix: string): Promise<{ tenantId: string; slug: string; apiKey: string }> {
  const slug = `${prefix}-${randomBytes(3).toString('hex')}`;
  return { slug, ...(await stack.createTenant(slug)) };
}

test('PATCH retentionDays: 1..3650 or null, shown in GET; anything else is 400 VALIDATION_FAILED', async () => {
  const t = await newTenant('ret-api');
  expect((await stack.request('GET', `/v1/tenants/${t.tenantId}`)).body.retentionDays).toBeNull();
  for (const bad of [0, 3651, 1.5, '10', -1, true]) {
    const res = await stack.request('PATCH', `/v1/tenants/${t.tenantId}`, { body: { retentionDays: bad } });
    expect({ bad, status: res.status, code: res.body.error?.code }).toEqual({ bad, status: 400, code: 'VALIDATION_FAILED' });
  }
  for (const good of [1, 3650, null]) {
    const res = await stack.request('PATCH', `/v1/tenants/${t.tenantId}`, { body: { retentionDays: good } });
    expect(res.status).toBe(200);
    expect(res.body.retentionDays).toBe(good);
    expect((await stack.request('GET', `/v1/tenants/${t.tenantId}`)).body.retentionDays).toBe(good);
  }
  // A tenant may not change its own retention: the platform admin does.
  const own = await stack.request('PATCH', `/v1/tenants/${t.tenantId}`, { apiKey: t.apiKey, body: { retentionDays: 5 } });
  expect(own.status).toBe(403);
});

test('a tenant override and the platform default both apply; only old final rows go, in batches, archived first', async () => {
  const now = new Date();
  const a = await newTenant('ret-override');
  const b = await newTenant('ret-default');
  expect((await stack.request('PATCH', `/v1/tenants/${a.tenantId}`, { body: { retentionDays: 10 } })).status).toBe(200);
  const seededA = await seed(a.tenantId, a.slug, 10, now);
  const seededB = await seed(b.tenantId, b.slug, PLATFORM_DAYS, now);
  // 20 days old: past A's 10 days, within the platform's 30 for B.
  const [taskB] = await stack.db.query(`SELECT id FROM tasks WHERE tenant_id = $1`, [b.tenantId]);
  const [mid] = await stack.db.query(
    `INSERT INTO runs (tenant_id, task_id, task_version, trigger, status, workflow_id, created_at, finished_at)
     VALUES ($1, $2, 1, 'manual', 'succeeded', $3, $4, $4) RETURNING id`,
    [b.tenantId, taskB.id, `wf-${randomUUID()}`, ago(now, 20 * DAY)],
  );
  seededB.kept.runs.push(mid.id);
  const before = { a: await counts(a.tenantId), b: await counts(b.tenantId) };
  expect(before.a).toEqual({
    runs: 13,
    run_attempts: 13,
    run_shards: 11,
    run_output_chunks: 26,
    pipeline_runs: 2,
    pipeline_run_steps: 2,
    audit_events: 6,
  });

  const retention = stack.app.get(RetentionService);
  const expectedDeleted = {
    runs: 7,
    run_attempts: 7,
    run_shards: 7,
    run_output_chunks: 14,
    pipeline_runs: 1,
    pipeline_run_steps: 1,
    audit_events: 4,
  };
  const reports: Record<string, RetentionReport> = {};
  for (const [name, t, days] of [
    ['a', a, 10],
    ['b', b, PLATFORM_DAYS],
  ] as const) {
    const report = await retention.runOnce({ tenantId: t.tenantId, now, batchSize: 3 });
    expect(report).not.toBeNull();
    reports[name] = report!;
    expect(report!.scopes).toEqual([
      {
        tenantId: t.tenantId,
        slug: t.slug,
        retentionDays: days,
        cutoff: ago(now, days * DAY).toISOString(),
        deleted: expectedDeleted,
        // 7 runs: 3 + 3 + 1; 4 audit events: 3 + 1; 1 pipeline run.
        batches: { runs: 3, pipeline_runs: 1, audit_events: 2 },
      },
    ]);
    expect(report!.deleted).toEqual(expectedDeleted);
  }

  for (const [s, before_, after] of [
    [seededA, before.a, await counts(a.tenantId)],
    [seededB, before.b, await counts(b.tenantId)],
  ] as const) {
    expect(after).toEqual(Object.fromEntries(Object.entries(before_).map(([k, v]) => [k, v - expectedDeleted[k as RetentionTable]])));
    const runsLeft: { id: string }[] = await stack.db.query(`SELECT id FROM runs WHERE tenant_id = $1`, [s.tenantId]);
    expect(sorted(runsLeft.map((r) => r.id))).toEqual(sorted(s.kept.runs));
    const pipelineRunsLeft: { id: string }[] = await stack.db.query(`SELECT id FROM pipeline_runs WHERE tenant_id = $1`, [s.tenantId]);
    expect(sorted(pipelineRunsLeft.map((r) => r.id))).toEqual(sorted(s.kept.pipelineRuns));
    const auditLeft: { id: string }[] = await stack.db.query(
      `SELECT id FROM audit_events WHERE tenant_id = $1 AND action = 'test.retention'`,
      [s.tenantId],
    );
    expect(sorted(auditLeft.map((r) => r.id))).toEqual(sorted(s.kept.audit));
    // The retry outlives the run it retried: its link is cleared, the row stays.
    const [retry] = await stack.db.query(`SELECT retry_of_run_id FROM runs WHERE id = $1`, [s.retryId]);
    expect(retry.retry_of_run_id).toBeNull();

    // The archive holds exactly the rows deleted: one file per table for the pass.
    expect(sorted(archived(s.slug, 'runs').map((r) => r.id))).toEqual(sorted(s.gone.runs));
    expect(sorted(archived(s.slug, 'run_attempts').map((r) => r.run_id))).toEqual(sorted(s.gone.runs));
    expect(sorted(archived(s.slug, 'run_shards').map((r) => r.run_id))).toEqual(sorted(s.gone.runs));
    expect(sorted(archived(s.slug, 'run_output_chunks').map((r) => `${r.run_id}/${r.seq}`))).toEqual(
      sorted(s.gone.runs.flatMap((id) => [`${id}/0`, `${id}/1`])),
    );
    expect(archived(s.slug, 'pipeline_runs').map((r) => r.id)).toEqual(s.gone.pipelineRuns);
    expect(archived(s.slug, 'pipeline_run_steps').map((r) => r.pipeline_run_id)).toEqual(s.gone.pipelineRuns);
    expect(sorted(archived(s.slug, 'audit_events').map((r) => r.id))).toEqual(sorted(s.gone.audit));
    expect(readdirSync(join(archiveDir, s.slug))).toHaveLength(7);
  }
  expect(reports.a.archived).toHaveLength(7);
  const oneRun = archived(a.slug, 'runs')[0] as Record<string, unknown>;
  expect(oneRun).toMatchObject({ tenant_id: a.tenantId, workflow_id: `wf-${oneRun.id}` });

  // A second pass finds nothing more.
  const again = await retention.runOnce({ tenantId: a.tenantId, now, batchSize: 3 });
  expect(again!.scopes[0].batches).toEqual({ runs: 0, pipeline_runs: 0, audit_events: 0 });
  expect(again!.scopes[0].deleted.runs).toBe(0);

  const metrics = (await stack.request('GET', '/metrics', { apiKey: null })).body as string;
  expect(metrics).toContain('task_scheduler_retention_deleted_total{table="runs"} 14');
  expect(metrics).toContain('task_scheduler_retention_deleted_total{table="run_output_chunks"} 28');
});

test('when the archive cannot be written, nothing is deleted', async () => {
  const now = new Date();
  const c = await newTenant('ret-unwritable');
  await seed(c.tenantId, c.slug, PLATFORM_DAYS, now);
  const before = await counts(c.tenantId);
  // A file where the tenant's archive directory would go: mkdir fails.
  writeFileSync(join(archiveDir, c.slug), 'not a directory');
  const report = await stack.app.get(RetentionService).runOnce({ tenantId: c.tenantId, now, batchSize: 3 });
  expect(report!.scopes).toHaveLength(1);
  expect(report!.scopes[0].error).toMatch(/EEXIST|ENOTDIR/);
  expect(report!.scopes[0].batches).toEqual({ runs: 0, pipeline_runs: 0, audit_events: 0 });
  expect(await counts(c.tenantId)).toEqual(before);
});
