/* Temporal crashes twice (SIGKILL of the dev server, started again on the same SQLite file and port) while 200
 * shell runs of one tenant are in flight: every run still ends `succeeded` with one final record and one
 * succeeded attempt, Temporal holds exactly its 200 workflows, and no record or slot is left behind. */
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { assertRunInvariants, listTenantWorkflows, startOwnTemporal, waitFor } from '../support/faults';
import type { OwnTemporal } from '../support/faults';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';

const RUNS = 200;
const log = (m: string) => process.stdout.write(`[temporal-restart] ${m}\n`);

let temporal: OwnTemporal;
let stack: TestStack;
let connection: Connection;
let client: Client;

beforeAll(async () => {
  temporal = await startOwnTemporal();
  stack = await startStack('fault-temporal-restart', { env: { TEMPORAL_ADDRESS: temporal.address } });
  connection = await Connection.connect({ address: temporal.address });
  client = new Client({ connection, namespace: stack.config.TEMPORAL_NAMESPACE });
}, 120_000);
afterAll(async () => {
  await connection?.close();
  await stack?.stop();
  await temporal?.stop('SIGTERM');
});

test('200 runs in flight survive two SIGKILLs of the Temporal server', async () => {
  const t0 = Date.now();
  const tenant = await stack.createTenant(`fault-restart-${randomBytes(3).toString('hex')}`, { maxConcurrentRuns: RUNS + 50 });
  const taskIds: string[] = [];
  for (let n = 1; n <= 5; n++) {
    const res = await stack.request('POST', '/v1/tasks', {
      apiKey: tenant.apiKey,
      body: {
        name: `sleep-${n}`,
        executor: 'shell',
        shell: { script: `sleep ${n}` },
        timeoutSeconds: 300,
        retry: { maximumAttempts: 5, initialIntervalSeconds: 1, maximumIntervalSeconds: 5 },
      },
    });
    expect(res.status).toBe(201);
    taskIds.push(res.body.id);
  }
  const runIds: string[] = [];
  for (let i = 0; i < RUNS; i += 10) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(10, RUNS - i) }, (_, j) =>
        stack.request('POST', `/v1/tasks/${taskIds[(i + j) % 5]}/runs`, { apiKey: tenant.apiKey }),
      ),
    );
    for (const res of batch) {
      expect(res.status).toBe(202);
      runIds.push(res.body.id);
    }
  }
  expect(new Set(runIds).size).toBe(RUNS);
  log(`${RUNS} runs triggered in ${Date.now() - t0} ms`);

  const statusCounts = async (): Promise<Record<string, number>> => {
    const rows: { status: string; n: number }[] = await stack.db.query(
      `SELECT status, count(*)::int AS n FROM runs WHERE tenant_id = $1 GROUP BY status`,
      [tenant.tenantId],
    );
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  };
  // Progress the server is needed for: a run ending (its workflow's record activity), an attempt starting (an activity task).
  const progress = async (): Promise<number> => {
    const [row]: { n: number }[] = await stack.db.query(
      `SELECT ((SELECT count(*) FROM runs WHERE tenant_id = $1 AND status IN ('succeeded', 'failed', 'cancelled', 'timed_out'))
             + (SELECT count(*) FROM run_attempts WHERE tenant_id = $1))::int AS n`,
      [tenant.tenantId],
    );
    return row.n;
  };

  await waitFor(async () => ((await statusCounts()).running ?? 0) >= 20, { timeoutMs: 120_000, what: '20 runs running' });
  const recoveries: { down: Record<string, number>; bootMs: number; firstProgressMs: number }[] = [];
  for (let round = 1; round <= 2; round++) {
    const down = await statusCounts();
    expect((down.queued ?? 0) + (down.running ?? 0)).toBeGreaterThan(0); // the kill hits runs in flight
    await temporal.stop('SIGKILL');
    await new Promise((r) => setTimeout(r, 3_000));
    const restartAt = Date.now();
    const before = await progress();
    await temporal.start();
    const bootMs = Date.now() - restartAt;
    await waitFor(async () => (await progress()) > before, { timeoutMs: 180_000, what: `progress after restart ${round}`, intervalMs: 100 });
    const firstProgressMs = Date.now() - restartAt;
    recoveries.push({ down, bootMs, firstProgressMs });
    log(`kill ${round} (SIGKILL) with runs ${JSON.stringify(down)}: server up ${bootMs} ms after restart, first run progress ${firstProgressMs} ms`);
    await new Promise((r) => setTimeout(r, 2_000));
  }

  await waitFor(async () => (await statusCounts()).succeeded === RUNS || isStuck(await statusCounts()), {
    timeoutMs: 300_000,
    what: `all ${RUNS} runs final`,
    intervalMs: 500,
  });
  const final = await statusCounts();
  log(`final statuses ${JSON.stringify(final)}; total ${Date.now() - t0} ms`);
  expect(final).toEqual({ succeeded: RUNS });

  const attempts: { run_id: string; succeeded: number; total: number }[] = await stack.db.query(
    `SELECT r.id AS run_id, count(a.*) FILTER (WHERE a.status = 'succeeded')::int AS succeeded, count(a.*)::int AS total
       FROM runs r LEFT JOIN run_attempts a ON a.run_id = r.id WHERE r.tenant_id = $1 GROUP BY r.id`,
    [tenant.tenantId],
  );
  expect(attempts.length).toBe(RUNS);
  const retried = attempts.filter((a) => a.total > 1).length;
  log(`attempts: ${attempts.reduce((s, a) => s + a.total, 0)} in all, ${retried} runs with more than one attempt`);
  expect(attempts.filter((a) => a.succeeded !== 1)).toEqual([]);
  expect(attempts.map((a) => a.run_id).sort()).toEqual([...runIds].sort());

  const workflows = await waitFor(
    async () => {
      const wfs = await listTenantWorkflows(client, tenant.tenantId);
      return wfs.length === RUNS && wfs.every((w) => w.status === 'COMPLETED') ? wfs : null;
    },
    { timeoutMs: 60_000, what: `${RUNS} completed workflows listed for the tenant` },
  );
  expect(workflows.map((w) => w.taskRunId).sort()).toEqual([...runIds].sort());
  expect(new Set(workflows.map((w) => w.workflowId)).size).toBe(RUNS);

  const report = await assertRunInvariants(stack.db, client, { tenantId: tenant.tenantId });
  expect(report).toMatchObject({ unfinished: 0, slotsHeld: 0, byStatus: { succeeded: RUNS } });
  log(`recoveries ${JSON.stringify(recoveries.map(({ bootMs, firstProgressMs }) => ({ bootMs, firstProgressMs })))}; total ${Date.now() - t0} ms`);
}, 540_000);

/** Every run final but not all succeeded: stop waiting and let the assertion show the statuses. */
function isStuck(counts: Record<string, number>): boolean {
  return (counts.queued ?? 0) + (counts.running ?? 0) === 0;
}
