/* Tenant slots against the real PostgreSQL of the test run (no Temporal): which waiting runs a finished run
 * wakes (libs/db/src/run-slots.ts). Only runs that asked for a slot and were refused are woken; a run that is
 * recorded but has not asked yet takes the free slot itself, and a signal to it would be an extra workflow
 * task for nothing (docs/performance.md). And no refused run is left unwoken when a slot frees concurrently. */
import { randomBytes, randomUUID } from 'node:crypto';
import { RunRecorder } from '@task-scheduler/activities';
import { WAKE_SQL, lockTenantAdmission, runsToWake, tenantRunsToWake } from '@task-scheduler/db';
import type { DataSource } from 'typeorm';
import { openTestDataSource } from '../support/test-database';

let ds: DataSource;
let recorder: RunRecorder;

beforeAll(async () => {
  ds = await openTestDataSource('run-slots');
  recorder = new RunRecorder(ds);
});
afterAll(async () => ds?.destroy());

async function tenantWithTask(limit: number): Promise<{ tenantId: string; taskId: string }> {
  const [{ id: tenantId }] = await ds.query(`INSERT INTO tenants (slug, name, max_concurrent_runs) VALUES ($1, 's', $2) RETURNING id`, [
    `slots-${randomBytes(4).toString('hex')}`,
    limit,
  ]);
  const [{ id: taskId }] = await ds.query(
    `INSERT INTO tasks (tenant_id, name, executor, spec, timeout_seconds, retry_policy, secret_names)
     VALUES ($1, 't', 'shell', '{"script":"true"}', 60, '{}', '{}') RETURNING id`,
    [tenantId],
  );
  return { tenantId, taskId };
}

/** A run recorded as queued (not admitted), as ensureRunRecord leaves it; its workflow id is its own id. */
async function queuedRun(t: { tenantId: string; taskId: string }, priority = 0): Promise<string> {
  const id = randomUUID();
  await ds.query(
    `INSERT INTO runs (id, tenant_id, task_id, task_version, trigger, status, workflow_id, priority)
     VALUES ($1, $2, $3, 1, 'manual', 'queued', $4, $5)`,
    [id, t.tenantId, t.taskId, id, priority],
  );
  return id;
}

/** Ends the run as its final record would (slot freed) and returns whom that wakes, in one transaction. */
async function finish(runId: string): Promise<string[]> {
  return ds.transaction(async (tx) => {
    await tx.query(`UPDATE runs SET status = 'succeeded', finished_at = now() WHERE id = $1`, [runId]);
    return runsToWake(tx, runId);
  });
}

test('a finished run wakes the runs that were refused a slot, not those that have not asked yet', async () => {
  const t = await tenantWithTask(1);
  const holder = await queuedRun(t);
  expect(await recorder.acquireSlot(holder, t.tenantId)).toBe(true);
  const refused = [await queuedRun(t), await queuedRun(t)];
  for (const id of refused) expect(await recorder.acquireSlot(id, t.tenantId)).toBe(false);
  // The most urgent of them, so that only the mark keeps it from being chosen.
  const notAsked = await queuedRun(t, 10);

  const [marks] = await ds.query(
    `SELECT count(*) FILTER (WHERE slot_refused_at IS NOT NULL)::int AS marked, count(*)::int AS n FROM runs WHERE tenant_id = $1`,
    [t.tenantId],
  );
  expect(marks).toEqual({ marked: 2, n: 4 });

  // One slot frees: one refused run is woken (the oldest), never the one that has not asked.
  const woken = await finish(holder);
  expect(woken).toHaveLength(1);
  expect(refused).toContain(woken[0]);
  expect(woken).not.toContain(notAsked);
  // The one that had not asked takes the slot itself.
  expect(await recorder.acquireSlot(notAsked, t.tenantId)).toBe(true);
  // Once admitted, a refused run is no longer woken: it holds its slot.
  expect(await finish(notAsked)).toHaveLength(1);
  expect(await recorder.acquireSlot(woken[0], t.tenantId)).toBe(true);
  const other = refused.find((id) => id !== woken[0]) as string;
  expect(await finish(woken[0])).toEqual([other]);
});

test("raising a tenant's limit wakes as many refused runs as it frees, oldest first", async () => {
  const t = await tenantWithTask(1);
  const holder = await queuedRun(t);
  expect(await recorder.acquireSlot(holder, t.tenantId)).toBe(true);
  const refused: string[] = [];
  for (let i = 0; i < 3; i++) {
    refused.push(await queuedRun(t));
    expect(await recorder.acquireSlot(refused[i], t.tenantId)).toBe(false);
    // Distinct queue times: the order of the wake is theirs.
    await ds.query(`UPDATE runs SET queued_at = now() - make_interval(secs => $2) WHERE id = $1`, [refused[i], 10 - i]);
  }
  await queuedRun(t); // recorded, has not asked: never woken
  const raise = (limit: number): Promise<string[]> =>
    ds.transaction(async (tx) => {
      await tx.query(`UPDATE tenants SET max_concurrent_runs = $2 WHERE id = $1`, [t.tenantId, limit]);
      return tenantRunsToWake(tx, t.tenantId);
    });
  // 3 slots, 1 held: the two oldest refused runs.
  expect(await raise(3)).toEqual(refused.slice(0, 2));
  for (const id of refused.slice(0, 2)) expect(await recorder.acquireSlot(id, t.tenantId)).toBe(true);
  // All 3 held: nobody, even with the third still waiting.
  expect(await raise(3)).toEqual([]);
  expect(await raise(10)).toEqual([refused[2]]);
});

test('a run refused while a slot frees concurrently is woken or admitted, 40 of 40 times', async () => {
  // The race the admission lock in runsToWake closes: the refusal reads the slot as held while the ending
  // transaction is not yet committed, and the ending transaction looks for refused runs before the refusal
  // commits. Without the lock both miss and the run waits for its own re-check (10-60 s).
  for (let i = 0; i < 40; i++) {
    const t = await tenantWithTask(1);
    const holder = await queuedRun(t);
    expect(await recorder.acquireSlot(holder, t.tenantId)).toBe(true);
    const waiter = await queuedRun(t);
    const [woken, admitted] = await Promise.all([finish(holder), recorder.acquireSlot(waiter, t.tenantId)]);
    expect(admitted || woken.includes(waiter)).toBe(true);
  }
});

test('a run cancelled while its slot request waits for the lock ends without a deadlock', async () => {
  // finalizeRun locks the run's row and then, in runsToWake, the tenant's lock; acquireSlot takes the row first
  // too. Here another transaction holds the tenant's lock while the run asks for a slot and, cancelled, ends.
  const t = await tenantWithTask(1);
  const holder = await queuedRun(t);
  expect(await recorder.acquireSlot(holder, t.tenantId)).toBe(true);
  const run = await queuedRun(t);
  const blocker = ds.createQueryRunner();
  await blocker.connect();
  try {
    await blocker.startTransaction();
    await lockTenantAdmission(blocker, t.tenantId);
    const asking = recorder.acquireSlot(run, t.tenantId);
    const ending = (async () => {
      await waitForLockWaiters(1);
      return finish(run);
    })();
    await waitForLockWaiters(2);
    await blocker.commitTransaction();
    const [admitted, woken] = await Promise.all([asking, ending]);
    expect(typeof admitted).toBe('boolean');
    expect(woken).toEqual([]);
  } finally {
    if (blocker.isTransactionActive) await blocker.rollbackTransaction();
    await blocker.release();
  }
  const [row] = await ds.query(`SELECT status FROM runs WHERE id = $1`, [run]);
  expect(row.status).toBe('succeeded');
});

test('the runs to wake are read from the index of refused runs, not from every queued run', async () => {
  // A burst leaves hundreds of queued runs that have not asked for a slot; runsToWake, under the tenant's lock,
  // must not read them. The plan of its query names the partial index (seq scans off: the table here is small).
  const t = await tenantWithTask(1);
  const plan = await ds.transaction(async (tx) => {
    await tx.query(`SET LOCAL enable_seqscan = off`);
    await tx.query(`SET LOCAL enable_bitmapscan = off`);
    const rows: { 'QUERY PLAN': string }[] = await tx.query(`EXPLAIN ${WAKE_SQL}`, [t.tenantId, 20]);
    return rows.map((r) => r['QUERY PLAN']).join('\n');
  });
  expect(plan).toContain('runs_tenant_refused_idx');
});

/** Waits (at most 5 s) until at least `n` sessions of this suite wait for a lock. */
async function waitForLockWaiters(n: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const [{ waiting }] = await ds.query(
      `SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE application_name = 'task-scheduler-test-run-slots' AND wait_event_type = 'Lock'`,
    );
    if (waiting >= n) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`fewer than ${n} sessions waited for a lock within 5 s`);
}
