/* A run's workflow terminated from outside with the real `temporal` CLI, as an operator would: one reconciler
 * pass ends the record `cancelled` and frees the tenant's only slot, so its waiting run starts. */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { RunReconciler } from '../../apps/api/src/runs/run-reconciler';
import { assertRunInvariants, waitFor } from '../support/faults';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const localStack = require('../../scripts/lib/local-stack.cjs');

const log = (m: string) => process.stdout.write(`[terminated] ${m}\n`);
const REASON = 'operator terminated it with the temporal CLI';

let stack: TestStack;
let connection: Connection;
let client: Client;

beforeAll(async () => {
  stack = await startStack('fault-terminated');
  connection = await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS });
  client = new Client({ connection, namespace: stack.config.TEMPORAL_NAMESPACE });
});
afterAll(async () => {
  await connection?.close();
  await stack?.stop();
});

test('terminated with the CLI: one reconciler pass cancels the record and the queued run gets the slot', async () => {
  const t0 = Date.now();
  const tenant = await stack.createTenant(`fault-terminated-${randomBytes(3).toString('hex')}`, { maxConcurrentRuns: 1 });
  const task = await stack.request('POST', '/v1/tasks', {
    apiKey: tenant.apiKey,
    body: { name: 'long', executor: 'shell', shell: { script: 'sleep 300' }, timeoutSeconds: 600, retry: { maximumAttempts: 1 } },
  });
  expect(task.status).toBe(201);
  const trigger = async () => {
    const res = await stack.request('POST', `/v1/tasks/${task.body.id}/runs`, { apiKey: tenant.apiKey });
    expect(res.status).toBe(202);
    return res.body as { id: string; workflowId: string };
  };
  const first = await trigger();
  await stack.waitForRun(first.id, (r) => r.status === 'running', 60_000, tenant.apiKey);
  const second = await trigger();
  // The one slot is held: the second run waits for it.
  await waitFor(
    async () => {
      const [row]: { status: string; admitted: boolean }[] = await stack.db.query(
        `SELECT status, admitted_at IS NOT NULL AS admitted FROM runs WHERE id = $1`,
        [second.id],
      );
      return row?.status === 'queued' && !row.admitted ? row : null;
    },
    { timeoutMs: 30_000, what: 'second run queued without a slot' },
  );
  expect(await assertRunInvariants(stack.db, client, { tenantId: tenant.tenantId })).toMatchObject({
    byStatus: { queued: 1, running: 1 },
    unfinished: 2,
    slotsHeld: 1,
  });

  const cli: string = localStack.resolveTemporalCli();
  const { stdout } = await promisify(execFile)(
    cli,
    [
      'workflow',
      'terminate',
      '--address',
      stack.config.TEMPORAL_ADDRESS,
      '--namespace',
      stack.config.TEMPORAL_NAMESPACE,
      '--workflow-id',
      first.workflowId,
      '--reason',
      REASON,
    ],
    { timeout: 30_000 },
  );
  log(`temporal workflow terminate: ${stdout.trim()}`);
  expect((await client.workflow.getHandle(first.workflowId).describe()).status.name).toBe('TERMINATED');
  // Nothing in the product notices by itself before a reconciler pass (RUN_RECONCILE_SECONDS=0 in tests): the
  // record still holds the slot.
  expect(await stack.db.query(`SELECT status FROM runs WHERE id = $1`, [first.id])).toEqual([{ status: 'running' }]);

  const report = await stack.app.get(RunReconciler).reconcile({ minAgeSeconds: 0, tenantId: tenant.tenantId });
  expect(report?.ended).toEqual([{ runId: first.id, status: 'cancelled', reason: `its workflow was terminated from outside: ${REASON}` }]);
  expect(report?.errors).toEqual([]);
  const ended = await stack.waitForRun(first.id, undefined, 10_000, tenant.apiKey);
  expect(ended).toMatchObject({ status: 'cancelled', error: `its workflow was terminated from outside: ${REASON}` });
  expect(ended.attempts).toHaveLength(1);
  expect(['abandoned', 'cancelled']).toContain(ended.attempts[0].status);

  const startedAt = Date.now();
  await stack.waitForRun(second.id, (r) => r.status === 'running', 90_000, tenant.apiKey);
  log(`second run running ${Date.now() - startedAt} ms after the reconciler pass`);
  expect(await assertRunInvariants(stack.db, client, { tenantId: tenant.tenantId })).toMatchObject({
    byStatus: { cancelled: 1, running: 1 },
    unfinished: 1,
    slotsHeld: 1,
  });
  // A second pass leaves the live run alone.
  expect((await stack.app.get(RunReconciler).reconcile({ minAgeSeconds: 0, tenantId: tenant.tenantId }))?.ended).toEqual([]);

  expect((await stack.request('POST', `/v1/runs/${second.id}/cancel`, { apiKey: tenant.apiKey })).status).toBe(202);
  await stack.waitForRun(second.id, undefined, 60_000, tenant.apiKey);
  expect(await assertRunInvariants(stack.db, client, { tenantId: tenant.tenantId })).toMatchObject({
    byStatus: { cancelled: 2 },
    unfinished: 0,
    slotsHeld: 0,
  });
  log(`total ${Date.now() - t0} ms`);
}, 240_000);
