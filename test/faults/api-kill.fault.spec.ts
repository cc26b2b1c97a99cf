/* An API process killed with SIGKILL at random moments while triggers arrive, over many rounds. The trigger
 * path starts the run's workflow inside the database transaction that inserts the row: killed before the start,
 * neither remains; killed between the start and the commit, the workflow's first activity writes the row. After
 * all rounds (and one reconciler pass) every row has its workflow, every workflow its row, and all are final. */
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { RunReconciler } from '../../apps/api/src/runs/run-reconciler';
import { assertRunInvariants, listTenantWorkflows, waitFor } from '../support/faults';
import { freePort } from '../support/ports';
import { startStack } from '../support/stack';
import type { AppProcess, TestStack } from '../support/stack';

const ROUNDS = 10;
const TRIGGERS_PER_ROUND = 20;
const log = (m: string) => process.stdout.write(`[api-kill] ${m}\n`);

let stack: TestStack;
let connection: Connection;
let client: Client;
let api: AppProcess | null = null;

beforeAll(async () => {
  stack = await startStack('fault-api-kill');
  connection = await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS });
  client = new Client({ connection, namespace: stack.config.TEMPORAL_NAMESPACE });
});
afterAll(async () => {
  if (api && api.child.exitCode === null && api.child.signalCode === null) api.child.kill('SIGKILL');
  await api?.exited;
  await connection?.close();
  await stack?.stop();
});

test(`SIGKILL of the API during triggers, ${ROUNDS} rounds of ${TRIGGERS_PER_ROUND}: rows and workflows match`, async () => {
  const t0 = Date.now();
  const tenant = await stack.createTenant(`fault-api-kill-${randomBytes(3).toString('hex')}`, { maxConcurrentRuns: 50 });
  const task = await stack.request('POST', '/v1/tasks', {
    apiKey: tenant.apiKey,
    body: { name: 'quick', executor: 'shell', shell: { script: 'true' }, timeoutSeconds: 60, retry: { maximumAttempts: 3 } },
  });
  expect(task.status).toBe(201);

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const accepted: string[] = [];
  const outcomes: Record<string, number> = {};
  const killDelays: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    api = stack.spawnApp('api', {
      PORT: String(port),
      HOST: '127.0.0.1',
      RATE_LIMIT_PER_KEY_PER_MINUTE: '1000000',
      SCHEDULE_RECONCILE_SECONDS: '0',
    });
    const proc = api;
    await waitFor(
      async () => {
        if (proc.child.exitCode !== null) throw new Error(`API exited with ${proc.child.exitCode}: ${proc.output().slice(-2000)}`);
        return (await fetch(`${base}/health`, { signal: AbortSignal.timeout(2_000) })).ok;
      },
      { timeoutMs: 60_000, what: `API process of round ${round} ready` },
    );
    const triggers = Array.from({ length: TRIGGERS_PER_ROUND }, async (_, i) => {
      // Spread over ~600 ms, so the kill lands before, inside and after the requests of a round.
      await new Promise((r) => setTimeout(r, i * 30));
      try {
        const res = await fetch(`${base}/v1/tasks/${task.body.id}/runs`, {
          method: 'POST',
          headers: { 'x-api-key': tenant.apiKey },
          signal: AbortSignal.timeout(15_000),
        });
        const body = (await res.json().catch(() => null)) as { id?: string } | null;
        if (res.status === 202 && body?.id) accepted.push(body.id);
        return `http ${res.status}`;
      } catch {
        return 'connection lost';
      }
    });
    const delay = Math.floor(Math.random() * 1_200);
    killDelays.push(delay);
    await new Promise((r) => setTimeout(r, delay));
    proc.child.kill('SIGKILL');
    for (const o of await Promise.all(triggers)) outcomes[o] = (outcomes[o] ?? 0) + 1;
    await proc.exited;
  }
  api = null;
  log(`kill delays (ms after the first trigger) ${JSON.stringify(killDelays)}; outcomes ${JSON.stringify(outcomes)}`);
  expect(Object.values(outcomes).reduce((a, b) => a + b, 0)).toBe(ROUNDS * TRIGGERS_PER_ROUND);
  expect(Object.keys(outcomes).filter((o) => o !== 'http 202' && o !== 'connection lost')).toEqual([]);
  expect(accepted.length).toBe(outcomes['http 202'] ?? 0);

  // Every workflow Temporal started for the tenant closes; visibility is eventually consistent, so its list is
  // read until it is stable and all closed.
  const workflows = await waitFor(
    async () => {
      const wfs = await listTenantWorkflows(client, tenant.tenantId);
      return wfs.length >= accepted.length && wfs.every((w) => w.status === 'COMPLETED') ? wfs : null;
    },
    { timeoutMs: 180_000, what: 'every workflow of the tenant completed' },
  );
  const report = await stack.app.get(RunReconciler).reconcile({ minAgeSeconds: 0, tenantId: tenant.tenantId });
  expect(report?.errors).toEqual([]);
  expect(report?.ended).toEqual([]);

  const rows: { id: string; workflow_id: string; status: string; audited: boolean }[] = await stack.db.query(
    `SELECT r.id, r.workflow_id, r.status,
            EXISTS (SELECT 1 FROM audit_events e WHERE e.action = 'run.trigger' AND e.target_id = r.id::text) AS audited
       FROM runs r WHERE r.tenant_id = $1 ORDER BY r.id`,
    [tenant.tenantId],
  );
  const byWorkflow = await waitFor(
    async () => {
      const wfs = await listTenantWorkflows(client, tenant.tenantId);
      return wfs.length === rows.length ? wfs : null;
    },
    { timeoutMs: 30_000, what: `${rows.length} workflows listed, one per row` },
  ).catch(() => workflows);
  const writtenByWorkflow = rows.filter((r) => !r.audited).length;
  log(
    `accepted 202s ${accepted.length}; rows ${rows.length} (${writtenByWorkflow} written by the workflow, not the API); ` +
      `workflows ${byWorkflow.length}; total ${Date.now() - t0} ms`,
  );
  // Every accepted run has its row; every row its workflow and every workflow its row, one each.
  expect(accepted.filter((id) => !rows.some((r) => r.id === id))).toEqual([]);
  expect(byWorkflow.map((w) => w.taskRunId).sort()).toEqual(rows.map((r) => r.id).sort());
  expect(byWorkflow.map((w) => w.workflowId).sort()).toEqual(rows.map((r) => r.workflow_id).sort());
  expect(new Set(byWorkflow.map((w) => w.workflowId)).size).toBe(rows.length);
  expect(rows.filter((r) => r.status !== 'succeeded')).toEqual([]);
  expect(rows.length).toBeGreaterThanOrEqual(accepted.length);
  expect(rows.length).toBeLessThanOrEqual(ROUNDS * TRIGGERS_PER_ROUND);

  expect(await assertRunInvariants(stack.db, client, { tenantId: tenant.tenantId })).toMatchObject({
    byStatus: { succeeded: rows.length },
    unfinished: 0,
    slotsHeld: 0,
  });
}, 420_000);
