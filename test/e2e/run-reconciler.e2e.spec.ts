/* The run reconciler: a run whose workflow was terminated from outside (Temporal UI or CLI), or whose workflow
 * is gone, is ended by one pass with the workflow's outcome, and its tenant's slot goes to the run waiting. */
import { randomBytes, randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { RunReconciler } from '../../apps/api/src/runs/run-reconciler';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';

let stack: TestStack;
let connection: Connection;
let client: Client;

beforeAll(async () => {
  stack = await startStack('run-reconciler');
  connection = await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS });
  client = new Client({ connection, namespace: stack.config.TEMPORAL_NAMESPACE });
});
afterAll(async () => {
  await connection?.close();
  await stack?.stop();
});

test('terminated from outside: one pass ends the run as cancelled and the waiting run gets the slot', async () => {
  const tenant = await stack.createTenant(`reconcile-${randomBytes(3).toString('hex')}`, { maxConcurrentRuns: 1 });
  const created = await stack.request('POST', '/v1/tasks', {
    apiKey: tenant.apiKey,
    body: { name: 'long', executor: 'shell', shell: { script: 'sleep 120' }, timeoutSeconds: 300, retry: { maximumAttempts: 1 } },
  });
  expect(created.status).toBe(201);
  const trigger = async () => (await stack.request('POST', `/v1/tasks/${created.body.id}/runs`, { apiKey: tenant.apiKey })).body;
  const first = await trigger();
  await stack.waitForRun(first.id, (r) => r.status === 'running', 60_000, tenant.apiKey);
  const second = await trigger();
  // The tenant's one slot is held: the second run waits for it.
  await new Promise((r) => setTimeout(r, 1_500));
  expect((await stack.request('GET', `/v1/runs/${second.id}`, { apiKey: tenant.apiKey })).body).toMatchObject({
    status: 'queued',
    admittedAt: null,
  });

  await client.workflow.getHandle(first.workflowId).terminate('operator stopped it in the Temporal UI');
  const reconciler = stack.app.get(RunReconciler);
  const report = await reconciler.reconcile({ minAgeSeconds: 0, tenantId: tenant.tenantId });
  expect(report?.ended).toEqual([
    { runId: first.id, status: 'cancelled', reason: 'its workflow was terminated from outside: operator stopped it in the Temporal UI' },
  ]);
  // What it did is in the tenant's audit log, by the reconciler.
  const audit = (await stack.request('GET', '/v1/audit-events?action=run.reconciled', { apiKey: tenant.apiKey })).body;
  expect(audit.items).toHaveLength(1);
  expect(audit.items[0]).toMatchObject({
    targetId: first.id,
    details: { actor: 'system:run-reconciler', status: 'cancelled', workflowStatus: 'TERMINATED' },
  });
  const ended = (await stack.request('GET', `/v1/runs/${first.id}`, { apiKey: tenant.apiKey })).body;
  expect(ended).toMatchObject({
    status: 'cancelled',
    error: 'its workflow was terminated from outside: operator stopped it in the Temporal UI',
  });
  // The attempt is no longer running: abandoned by the reconciler, or cancelled by its worker first (the
  // heartbeat after the termination tells the activity its workflow is gone), whichever came first.
  expect(ended.attempts).toHaveLength(1);
  expect(['abandoned', 'cancelled']).toContain(ended.attempts[0].status);
  // The slot is free: the waiting run was woken by the reconciler (a signal, as after a run's own end) and starts.
  const signals = ((await client.workflow.getHandle(second.workflowId).fetchHistory()).events ?? []).filter(
    (e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'runSlotFreed',
  );
  expect(signals).toHaveLength(1);
  await stack.waitForRun(second.id, (r) => r.status === 'running', 60_000, tenant.apiKey);
  // A second pass changes nothing (the running one is left alone).
  expect((await reconciler.reconcile({ minAgeSeconds: 0, tenantId: tenant.tenantId }))?.ended).toEqual([]);
  await stack.request('POST', `/v1/runs/${second.id}/cancel`, { apiKey: tenant.apiKey });
  await stack.waitForRun(second.id, undefined, 60_000, tenant.apiKey);
}, 180_000);

test('a run whose workflow does not exist is ended failed, a dead letter; recent ones wait for the minimum age', async () => {
  const tenant = await stack.createTenant(`reconcile-gone-${randomBytes(3).toString('hex')}`);
  const created = await stack.request('POST', '/v1/tasks', {
    apiKey: tenant.apiKey,
    body: { name: 'never-started', executor: 'shell', shell: { script: 'true' } },
  });
  // Its task's alert rule counts the run the reconciler ends, as it would the run's own end.
  const channel = await stack.request('POST', '/v1/alert-channels', {
    apiKey: tenant.apiKey,
    body: { name: 'never-sent', type: 'webhook', url: 'https://hooks.example.com/x' },
  });
  const rule = await stack.request('POST', '/v1/alert-rules', {
    apiKey: tenant.apiKey,
    body: { name: 'gone', kind: 'consecutive_failures', taskId: created.body.id, failures: 1, channelId: channel.body.id },
  });
  expect(rule.status).toBe(201);
  const runId = randomUUID();
  // A record whose workflow is gone (deleted from Temporal, or past its retention) while the record was not final.
  await stack.db.query(
    `INSERT INTO runs (id, tenant_id, task_id, task_version, trigger, status, workflow_id)
     VALUES ($1, $2, $3, 1, 'manual', 'queued', $4)`,
    [runId, tenant.tenantId, created.body.id, `run-${runId}`],
  );
  const reconciler = stack.app.get(RunReconciler);
  // Younger than the minimum age: not looked at.
  expect((await reconciler.reconcile({ minAgeSeconds: 3600, tenantId: tenant.tenantId }))?.checked).toBe(0);
  const report = await reconciler.reconcile({ minAgeSeconds: 0, tenantId: tenant.tenantId });
  expect(report?.ended.map((e) => [e.runId, e.status])).toEqual([[runId, 'failed']]);
  const run = (await stack.request('GET', `/v1/runs/${runId}`, { apiKey: tenant.apiKey })).body;
  expect(run).toMatchObject({ status: 'failed', deadLetter: true });
  expect(run.error).toMatch(/no longer exists/);
  const alerts = (await stack.request('GET', '/v1/alerts?state=firing', { apiKey: tenant.apiKey })).body;
  expect(alerts.items.map((a: { subjectId: string; details: { lastRunId: string } }) => [a.subjectId, a.details.lastRunId])).toEqual([
    [created.body.id, runId],
  ]);
});
