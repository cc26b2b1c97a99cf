/* Issue 13, part two: PostgreSQL stopped for 60 s with runs in flight. The record activities retry (their policy
 * allows 1000 attempts, up to 60 s apart, workflows/src/task-run.workflow.ts) and every run still ends
 * `succeeded` exactly once; while the database is down the API answers 503 DATABASE_UNAVAILABLE and /ready says
 * which dependency is missing. On a PostgreSQL of the test's own: the shared one other suites use keeps running. */
import { randomBytes } from 'node:crypto';
import { FINAL_RUN_STATUSES } from '@task-scheduler/contracts';
import { Client, Connection } from '@temporalio/client';
import { assertRunInvariants, waitFor } from '../support/faults';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';
import { startPrivatePostgres } from './private-postgres';
import type { PrivatePostgres } from './private-postgres';

const log = (m: string) => process.stdout.write(`[pg-stopped] ${m}\n`);
const RUNS = 40;
const OUTAGE_MS = 60_000;

let pg: PrivatePostgres;
let stack: TestStack;
let connection: Connection;
let client: Client;

beforeAll(async () => {
  pg = await startPrivatePostgres();
  stack = await startStack('pg-stopped', { env: { DATABASE_URL: pg.url } });
  connection = await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS });
  client = new Client({ connection, namespace: stack.config.TEMPORAL_NAMESPACE });
});
afterAll(async () => {
  await connection?.close();
  await pg?.start().catch(() => undefined);
  await stack?.stop();
  await pg?.destroy();
});

test('PostgreSQL stopped for 60 s with 40 runs in flight: every run succeeds once, nothing left running', async () => {
  const t0 = Date.now();
  const tenant = await stack.createTenant(`pg-stopped-${randomBytes(3).toString('hex')}`, { maxConcurrentRuns: 100 });
  // 2 to 8 s each (POSIX sh arithmetic: the executor's shell may be dash).
  const task = await stack.request('POST', '/v1/tasks', {
    apiKey: tenant.apiKey,
    body: {
      name: 'sleeper',
      executor: 'shell',
      shell: { script: 'sleep $(( $(od -An -N1 -tu1 /dev/urandom) % 7 + 2 ))' },
      timeoutSeconds: 300,
      retry: { maximumAttempts: 3 },
    },
  });
  expect(task.status).toBe(201);
  const taskId: string = task.body.id;

  const runIds: string[] = [];
  for (let i = 0; i < RUNS; i++) {
    const res = await stack.request('POST', `/v1/tasks/${taskId}/runs`, { apiKey: tenant.apiKey, body: {} });
    expect(res.status).toBe(202);
    runIds.push(res.body.id);
  }
  // Stop with runs really executing, not all still queued.
  await waitFor(
    async () => {
      const [r] = await stack.db.query(`SELECT count(*)::int AS n FROM runs WHERE tenant_id = $1 AND status = 'running'`, [
        tenant.tenantId,
      ]);
      return r.n >= 5;
    },
    { timeoutMs: 60_000, what: 'runs running before the outage' },
  );
  const [before] = await stack.db.query(
    `SELECT count(*) FILTER (WHERE status = 'succeeded')::int AS done, count(*) FILTER (WHERE status = 'running')::int AS running
       FROM runs WHERE tenant_id = $1`,
    [tenant.tenantId],
  );
  log(`stopping PostgreSQL with ${before.running} running, ${before.done} succeeded of ${RUNS}`);
  const stoppedAt = Date.now();
  await pg.stop();

  // While it is down: the API says so, in its error format.
  const list = await stack.request('GET', '/v1/runs?limit=5', { apiKey: tenant.apiKey });
  expect(list.status).toBe(503);
  expect(list.body.error.code).toBe('DATABASE_UNAVAILABLE');
  expect(list.headers.get('retry-after')).toBe('1');
  const down = await stack.request('GET', '/ready', { apiKey: null });
  expect(down.status).toBe(503);
  expect(down.body.checks.postgres.ok).toBe(false);
  expect(down.body.checks.temporal).toEqual({ ok: true });

  await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - stoppedAt))));
  await pg.start();
  const restartedAt = Date.now();
  log(`PostgreSQL down for ${restartedAt - stoppedAt} ms`);
  const up = await waitFor(async () => (await stack.request('GET', '/ready', { apiKey: null })).status === 200, {
    timeoutMs: 10_000,
    what: '/ready after the restart',
  });
  expect(up).toBe(true);

  const rows: { id: string; status: string; attempts: number }[] = await waitFor(
    async () => {
      const r: { id: string; status: string; attempts: number }[] = await stack.db.query(
        `SELECT id, status, attempts FROM runs WHERE tenant_id = $1 ORDER BY id`,
        [tenant.tenantId],
      );
      return r.length === RUNS && r.every((x) => FINAL_RUN_STATUSES.includes(x.status as never)) ? r : null;
    },
    { timeoutMs: 150_000, what: 'every run final after the outage', intervalMs: 1000 },
  );
  const finals: Record<string, number> = {};
  for (const r of rows) finals[`${r.status} (attempts ${r.attempts})`] = (finals[`${r.status} (attempts ${r.attempts})`] ?? 0) + 1;
  log(`all ${RUNS} runs final ${Date.now() - restartedAt} ms after the restart: ${JSON.stringify(finals)}`);
  expect(rows.filter((r) => r.status !== 'succeeded')).toEqual([]);
  expect(rows.map((r) => r.id).sort()).toEqual([...runIds].sort());
  const attempts: Record<number, number> = {};
  for (const r of rows) attempts[r.attempts] = (attempts[r.attempts] ?? 0) + 1;
  expect(rows.filter((r) => r.attempts < 1 || r.attempts > 3)).toEqual([]);

  // Each run's workflow completed once, and its run record has exactly one final write (one `succeeded`).
  let activityRetries = 0;
  for (const id of runIds) {
    const [run] = await stack.db.query(`SELECT workflow_id FROM runs WHERE id = $1`, [id]);
    const handle = client.workflow.getHandle(run.workflow_id);
    // The final record is the workflow's last local activity: wait (bounded) for the workflow to close after it.
    await waitFor(async () => (await handle.describe()).status.name !== 'RUNNING', {
      timeoutMs: 30_000,
      what: `workflow ${run.workflow_id} closed`,
    });
    expect((await handle.describe()).status.name).toBe('COMPLETED');
    const history = await handle.fetchHistory();
    for (const e of history.events ?? []) {
      const attempt = e.activityTaskStartedEventAttributes?.attempt;
      if (attempt && attempt > 1) activityRetries += attempt - 1;
    }
  }
  const report = await assertRunInvariants(stack.db, client, { tenantId: tenant.tenantId });
  expect(report.byStatus).toEqual({ succeeded: RUNS });
  expect(report.unfinished).toBe(0);
  expect(report.slotsHeld).toBe(0);
  log(`attempts per run: ${JSON.stringify(attempts)}; activity retries in histories: ${activityRetries}; total ${Date.now() - t0} ms`);
});
