/* Issue 13, part one: every application connection to PostgreSQL killed (pg_terminate_backend), again and again,
 * while clients list runs, list tasks and trigger runs. No request may answer 500; a request that lost its
 * connection answers 503 DATABASE_UNAVAILABLE with Retry-After; the API recovers by itself (pg-pool drops a
 * client that lost its connection on release and opens a new one on demand); no trigger leaves a run row
 * without a workflow. On a PostgreSQL of the test's own, so no other suite loses its connections. */
import { randomBytes } from 'node:crypto';
import { FINAL_RUN_STATUSES } from '@task-scheduler/contracts';
import { Client as PgClient } from 'pg';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { assertRunInvariants, waitFor } from '../support/faults';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';
import { startPrivatePostgres } from './private-postgres';
import type { PrivatePostgres } from './private-postgres';

const log = (m: string) => process.stdout.write(`[pg-terminate] ${m}\n`);
const CLIENTS = 4;
const MAX_REQUESTS_PER_CLIENT = 400;
const KILL_FOR_MS = 4000;
const KILL_EVERY_MS = 150;

let pg: PrivatePostgres;
let stack: TestStack;
let connection: Connection;
let client: Client;
let killer: PgClient;

beforeAll(async () => {
  pg = await startPrivatePostgres();
  stack = await startStack('pg-terminate', { env: { DATABASE_URL: pg.url } });
  connection = await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS });
  client = new Client({ connection, namespace: stack.config.TEMPORAL_NAMESPACE });
  killer = new PgClient({ connectionString: pg.url, application_name: 'pg-terminate-killer' });
  await killer.connect();
});
afterAll(async () => {
  await killer?.end().catch(() => undefined);
  await connection?.close();
  await stack?.stop();
  await pg?.destroy();
});

interface Outcome {
  op: 'runs' | 'tasks' | 'trigger';
  startedAt: number;
  status: number;
  code?: string;
  retryAfter: string | null;
  runId?: string;
}

test('connections terminated under load: no 500, 503 DATABASE_UNAVAILABLE with Retry-After, recovery < 5 s, no orphan run', async () => {
  const t0 = Date.now();
  const tenant = await stack.createTenant(`pg-terminate-${randomBytes(3).toString('hex')}`, { maxConcurrentRuns: 1000 });
  const task = await stack.request('POST', '/v1/tasks', {
    apiKey: tenant.apiKey,
    body: { name: 'quick', executor: 'shell', shell: { script: 'true' }, timeoutSeconds: 60, retry: { maximumAttempts: 3 } },
  });
  expect(task.status).toBe(201);
  const taskId: string = task.body.id;

  const outcomes: Outcome[] = [];
  let stopLoad = false;
  const loadDeadline = Date.now() + 60_000;
  const loadClient = async (n: number) => {
    for (let i = 0; i < MAX_REQUESTS_PER_CLIENT && !stopLoad && Date.now() < loadDeadline; i++) {
      const op = (['runs', 'tasks', 'trigger'] as const)[(i + n) % 3];
      const startedAt = Date.now();
      const res =
        op === 'runs'
          ? await stack.request('GET', '/v1/runs?limit=5', { apiKey: tenant.apiKey })
          : op === 'tasks'
            ? await stack.request('GET', '/v1/tasks', { apiKey: tenant.apiKey })
            : await stack.request('POST', `/v1/tasks/${taskId}/runs`, { apiKey: tenant.apiKey, body: {} });
      outcomes.push({
        op,
        startedAt,
        status: res.status,
        code: res.body?.error?.code,
        retryAfter: res.headers.get('retry-after'),
        runId: op === 'trigger' && res.status === 202 ? res.body.id : undefined,
      });
    }
  };
  const load = Promise.all(Array.from({ length: CLIENTS }, (_, n) => loadClient(n)));

  // The API's sessions only: cutting the workers' too fails shell attempts (their start/end records are written
  // inside the executor activity), which pg-stopped.fault.spec.ts covers.
  // Load first, so the pools are full of connections in use when they are cut.
  await new Promise((r) => setTimeout(r, 1000));
  const terminate = `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
     WHERE datname = current_database() AND pid <> pg_backend_pid()
       AND application_name = 'task-scheduler-api'`;
  let terminations = 0;
  let sessionsKilled = 0;
  let lastTermination = 0;
  const killUntil = Date.now() + KILL_FOR_MS;
  for (let i = 0; i < 200 && Date.now() < killUntil; i++) {
    const { rows } = await killer.query(terminate);
    lastTermination = Date.now();
    terminations++;
    sessionsKilled += rows[0].n;
    await new Promise((r) => setTimeout(r, KILL_EVERY_MS));
  }
  // The recovery: the first 200 of a request sent after the last termination.
  let recoveredAt = 0;
  for (let i = 0; i < 100 && !recoveredAt && Date.now() - lastTermination < 10_000; i++) {
    const res = await stack.request('GET', '/v1/tasks', { apiKey: tenant.apiKey });
    if (res.status === 200) recoveredAt = Date.now();
    else await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 1000));
  stopLoad = true;
  await load;
  const recoveryMs = recoveredAt - lastTermination;

  const byStatus: Record<string, number> = {};
  for (const o of outcomes) byStatus[`${o.op} ${o.status}`] = (byStatus[`${o.op} ${o.status}`] ?? 0) + 1;
  log(`${outcomes.length} requests by ${CLIENTS} clients; ${terminations} terminations cut ${sessionsKilled} sessions`);
  log(`outcomes: ${JSON.stringify(byStatus)}`);
  log(`recovery: first 200 ${recoveryMs} ms after the last termination`);

  expect(sessionsKilled).toBeGreaterThan(0);
  expect(outcomes.filter((o) => o.status >= 500 && o.status !== 503)).toEqual([]);
  const failures = outcomes.filter((o) => o.status !== 200 && o.status !== 202);
  expect(failures.filter((o) => o.status !== 503 || o.code !== 'DATABASE_UNAVAILABLE' || o.retryAfter !== '1')).toEqual([]);
  // The fault really hit requests, or this test proves nothing.
  expect(failures.length).toBeGreaterThan(0);
  expect(recoveredAt).toBeGreaterThan(0);
  expect(recoveryMs).toBeLessThan(5000);
  // Nothing failed once the API had recovered (requests sent a little after the last cut).
  expect(outcomes.filter((o) => o.startedAt > recoveredAt && o.status !== 200 && o.status !== 202)).toEqual([]);

  const ready = await stack.request('GET', '/ready', { apiKey: null });
  expect(ready.status).toBe(200);
  expect(ready.body.checks.postgres).toEqual({ ok: true });

  // Every run row has its workflow; triggers answered 202 have their run; a 503 trigger may have a run only
  // when its workflow started before the commit failed (the workflow then writes the row itself).
  const accepted = outcomes.filter((o) => o.runId).map((o) => o.runId as string);
  const refusedTriggers = outcomes.filter((o) => o.op === 'trigger' && o.status === 503).length;
  const rows: { id: string; status: string; workflow_id: string }[] = await waitFor(
    async () => {
      const r: { id: string; status: string; workflow_id: string }[] = await stack.db.query(
        `SELECT id, status, workflow_id FROM runs WHERE tenant_id = $1`,
        [tenant.tenantId],
      );
      return r.length >= accepted.length && r.every((x) => FINAL_RUN_STATUSES.includes(x.status as never)) ? r : null;
    },
    { timeoutMs: 120_000, what: 'every run of the tenant final' },
  );
  expect(rows.filter((r) => r.status !== 'succeeded')).toEqual([]);
  const ids = new Set(rows.map((r) => r.id));
  expect(accepted.filter((id) => !ids.has(id))).toEqual([]);
  expect(new Set(accepted).size).toBe(accepted.length);
  expect(rows.length).toBeLessThanOrEqual(accepted.length + refusedTriggers);
  const missingWorkflows: string[] = [];
  for (const r of rows) {
    // The final record is written by the workflow's last local activity: the workflow closes just after it.
    const status = await waitFor(
      async () => {
        const name = await client.workflow
          .getHandle(r.workflow_id)
          .describe()
          .then((d) => d.status.name as string)
          .catch((err) => {
            if (err instanceof WorkflowNotFoundError) return 'NOT_FOUND';
            throw err;
          });
        return name === 'RUNNING' ? null : name;
      },
      { timeoutMs: 30_000, what: `workflow of run ${r.id} closed` },
    );
    if (status !== 'COMPLETED') missingWorkflows.push(`${r.id}: ${status}`);
  }
  expect(missingWorkflows).toEqual([]);
  const report = await assertRunInvariants(stack.db, client, { tenantId: tenant.tenantId });
  expect(report.unfinished).toBe(0);
  expect(report.slotsHeld).toBe(0);
  log(
    `${accepted.length} triggers accepted, ${refusedTriggers} refused with 503; ${rows.length} runs, all succeeded ` +
      `(${rows.length - accepted.length} recorded by their workflow after a 503); total ${Date.now() - t0} ms`,
  );
});
