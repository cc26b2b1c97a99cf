/* Per-tenant concurrency limits and fairness between tenants, on the real stack. */
import { FINAL_RUN_STATUSES } from '@task-scheduler/contracts';
import type { RunStatus } from '@task-scheduler/contracts';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';
import { checkReplayAndRecord } from '../support/replay-fixtures';

let stack: TestStack;

beforeAll(async () => {
  stack = await startStack('fairness');
});
afterAll(async () => stack?.stop());

interface Interval {
  start: number;
  end: number;
}

/** Largest number of intervals open at the same instant. */
function maxOverlap(intervals: Interval[]): number {
  const events = intervals.flatMap((i) => [
    { t: i.start, d: 1 },
    { t: i.end, d: -1 },
  ]);
  events.sort((a, b) => a.t - b.t || a.d - b.d); // an end at the same instant as a start frees first
  let open = 0;
  let max = 0;
  for (const e of events) max = Math.max(max, (open += e.d));
  return max;
}

test("a tenant's burst waits as queued within its limit and does not hold back another tenant's run", async () => {
  const LIMIT = 3;
  const BURST = 60;
  const a = await stack.createTenant(`fair-a-${Date.now()}`, { maxConcurrentRuns: LIMIT });
  const b = await stack.createTenant(`fair-b-${Date.now()}`, { maxConcurrentRuns: LIMIT });
  const taskA = await stack.request('POST', '/v1/tasks', {
    apiKey: a.apiKey,
    body: { name: 'busy', executor: 'shell', shell: { script: 'sleep 1' }, retry: { maximumAttempts: 1 } },
  });
  const taskB = await stack.request('POST', '/v1/tasks', {
    apiKey: b.apiKey,
    body: { name: 'single', executor: 'shell', shell: { command: 'echo', args: ['b'] }, retry: { maximumAttempts: 1 } },
  });

  const burstStarted = Date.now();
  const accepted: { status: number; body: { id: string; status: string } }[] = [];
  for (let i = 0; i < BURST; i += 20) {
    accepted.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(20, BURST - i) }, () =>
          stack.request('POST', `/v1/tasks/${taskA.body.id}/runs`, { apiKey: a.apiKey }),
        ),
      )),
    );
  }
  expect(accepted.map((r) => r.status)).toEqual(Array(BURST).fill(202));
  const triggerB = await stack.request('POST', `/v1/tasks/${taskB.body.id}/runs`, { apiKey: b.apiKey });
  expect(triggerB.status).toBe(202);

  const runB = await stack.waitForRun(triggerB.body.id, undefined, 60_000, b.apiKey);
  expect(runB.status).toBe('succeeded');
  // Runs over the limit wait as queued, without a slot, while B's run has already gone through.
  const [waiting] = await stack.db.query(
    `SELECT count(*)::int AS n FROM runs WHERE task_id = $1 AND status = 'queued' AND admitted_at IS NULL`,
    [taskA.body.id],
  );
  expect(waiting.n).toBeGreaterThan(0);

  const deadline = Date.now() + 120_000;
  let runsA: { status: string; started_at: Date | null; finished_at: Date | null }[] = [];
  for (;;) {
    runsA = await stack.db.query(`SELECT status, started_at, finished_at FROM runs WHERE task_id = $1`, [taskA.body.id]);
    if (runsA.every((r) => FINAL_RUN_STATUSES.includes(r.status as RunStatus))) break;
    if (Date.now() > deadline) throw new Error('tenant A burst did not drain within 120 s');
    await new Promise((r) => setTimeout(r, 500));
  }
  expect(runsA).toHaveLength(BURST);
  expect(runsA.every((r) => r.status === 'succeeded')).toBe(true); // waited, never failed for the limit

  const attemptsA: { started_at: Date; finished_at: Date }[] = await stack.db.query(
    `SELECT a.started_at, a.finished_at FROM run_attempts a JOIN runs r ON r.id = a.run_id WHERE r.task_id = $1`,
    [taskA.body.id],
  );
  const overlap = maxOverlap(attemptsA.map((x) => ({ start: x.started_at.getTime(), end: x.finished_at.getTime() })));
  expect(overlap).toBeLessThanOrEqual(LIMIT);
  expect(overlap).toBeGreaterThan(1); // the limit was used, not serialised to one

  const lastStartA = Math.max(...runsA.map((r) => (r.started_at as Date).getTime()));
  const bStarted = Date.parse(runB.startedAt);
  expect(bStarted).toBeLessThan(lastStartA); // B did not queue behind A's backlog
  // The last of A's runs waited for a slot and was woken by a signal: its history replays too.
  const [last] = await stack.db.query(`SELECT workflow_id FROM runs WHERE task_id = $1 ORDER BY started_at DESC LIMIT 1`, [taskA.body.id]);
  await checkReplayAndRecord(stack.config.TEMPORAL_ADDRESS, last.workflow_id, 'task-run-waited-for-slot.json');
  console.log(
    `fairness: tenant B's run queued→started ${Date.parse(runB.startedAt) - Date.parse(runB.queuedAt)} ms ` +
      `while tenant A's ${BURST}-run burst (limit ${LIMIT}) took ${((lastStartA - burstStarted) / 1000).toFixed(1)} s to start its last run; ` +
      `max concurrent A attempts ${overlap}`,
  );
}, 240_000);
