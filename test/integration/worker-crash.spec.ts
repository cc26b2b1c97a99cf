/* Real worker processes (apps/worker/dist/main.js): what a task can see of its worker, and what
 * happens to a run when its worker is killed with SIGKILL in the middle of an attempt. */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { startStack } from '../support/stack';
import type { AppProcess, TestStack } from '../support/stack';
import { eventually } from '../support/eventually';
import { processesMatching } from '../support/processes';

let stack: TestStack;
const CANARY = `canary-${randomBytes(12).toString('hex')}`;
const HEARTBEAT_TIMEOUT_SECONDS = 5;

beforeAll(async () => {
  // The API (in this process) puts the heartbeat timeout into each run's workflow input.
  stack = await startStack('crash', { workers: false, env: { HEARTBEAT_TIMEOUT_SECONDS: String(HEARTBEAT_TIMEOUT_SECONDS) } });
});
afterAll(async () => stack?.stop());

const startWorker = (identity: string): AppProcess =>
  stack.spawnApp('worker', { WORKER_IDENTITY: identity, HEARTBEAT_SECONDS: '1', TS_WORKER_CANARY: CANARY });

async function createTask(body: Record<string, unknown>): Promise<string> {
  const res = await stack.request('POST', '/v1/tasks', { body: { executor: 'shell', ...body } });
  expect(res.status).toBe(201);
  return res.body.id;
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

test("a task reading every process's environment finds none of the worker's", async () => {
  const worker = startWorker(`canary-${process.pid}`);
  try {
    const taskId = await createTask({
      name: 'read-environs',
      // cat fails on processes it may not read: exit 1 is expected, the output is what counts.
      shell: { script: 'env; cat /proc/*/environ | tr "\\0" "\\n"', env: { GREETING: 'hi' }, allowedExitCodes: [0, 1] },
      retry: { maximumAttempts: 1 },
    });
    const queued = await stack.request('POST', `/v1/tasks/${taskId}/runs`);
    const run = await stack.waitForRun(queued.body.id, undefined, 60_000);
    expect(run.status).toBe('succeeded');
    // All of it (the run's own stdout is the 4 KiB tail from history).
    const out: string = run.attempts[run.attempts.length - 1].stdout;

    // The check is meaningful: the worker's environment holds the canary and the database URL, and the task
    // could read environments from /proc (its own shell's and cat's, at least).
    const workerEnv = readFileSync(`/proc/${worker.child.pid}/environ`, 'utf8');
    expect(count(workerEnv, CANARY)).toBe(1);
    expect(workerEnv).toContain(stack.config.DATABASE_URL);
    expect(count(out, `TASK_RUN_ID=${run.id}`)).toBeGreaterThanOrEqual(2);
    expect(out).toContain('GREETING=hi');

    expect(count(out, CANARY)).toBe(0);
    expect(count(out, stack.config.DATABASE_URL)).toBe(0);
    expect(count(out, 'SECRETS_KEY')).toBe(0);
    expect(out).not.toMatch(/^(DATABASE_URL|TEMPORAL_ADDRESS|TS_WORKER_CANARY)=/m);
  } finally {
    await worker.stop();
  }
});

test('kill -9 of the worker during a 30 s task: the run completes on a new worker, succeeded once, nothing left running', async () => {
  const marker = `30.${randomBytes(3).readUIntBE(0, 3)}`;
  const taskId = await createTask({
    name: 'thirty-seconds',
    shell: { script: `sleep ${marker}; echo finished`, allowedExitCodes: [0] },
    timeoutSeconds: 120,
    retry: { maximumAttempts: 3, initialIntervalSeconds: 0.1 },
  });
  const first = startWorker('crash-first');
  let second: AppProcess | undefined;
  try {
    const queued = await stack.request('POST', `/v1/tasks/${taskId}/runs`);
    await stack.waitForRun(queued.body.id, (r) => r.status === 'running' && r.attempts.length === 1, 60_000);
    await eventually(() => processesMatching(`sleep ${marker}`).length > 0, Boolean, 10_000, 100);
    await new Promise((r) => setTimeout(r, 2_000)); // let a heartbeat (with the process group id) reach Temporal

    const leftBehind = processesMatching(`sleep ${marker}`);
    first.child.kill('SIGKILL');
    const killedAt = Date.now();
    await first.exited;
    expect(leftBehind.length).toBeGreaterThan(0);
    // The sandbox dies with its worker (bwrap --die-with-parent, then the PID namespace with its init).
    await eventually(() => leftBehind.filter(alive).length === 0, Boolean, 2_000, 50);
    second = startWorker('crash-second');

    const retried = await stack.waitForRun(queued.body.id, (r) => r.attempts.length === 2, 60_000);
    const retryStartedMs = Date.parse(retried.attempts[1].startedAt) - killedAt;
    console.log(
      `kill -9 → retry attempt started: ${(retryStartedMs / 1000).toFixed(1)} s (heartbeat timeout ${HEARTBEAT_TIMEOUT_SECONDS} s)`,
    );

    const run = await stack.waitForRun(queued.body.id, undefined, 90_000);
    expect(run.status).toBe('succeeded');
    expect(run.stdout).toBe('finished\n');
    expect(run.attemptCount).toBe(2);
    expect(
      run.attempts.map((a: { attempt: number; status: string; workerIdentity: string }) => [a.attempt, a.status, a.workerIdentity]),
    ).toEqual([
      [1, 'abandoned', 'crash-first'],
      [2, 'succeeded', 'crash-second'],
    ]);
    expect(retryStartedMs).toBeGreaterThanOrEqual((HEARTBEAT_TIMEOUT_SECONDS - 1) * 1000);

    const rows: { status: string; n: number }[] = await stack.db.query(
      `SELECT status, count(*)::int AS n FROM runs WHERE task_id = $1 GROUP BY status`,
      [taskId],
    );
    expect(rows).toEqual([{ status: 'succeeded', n: 1 }]);
    const attemptsRunning = await stack.db.query(
      `SELECT 1 FROM run_attempts a JOIN runs r ON r.id = a.run_id WHERE r.task_id = $1 AND a.status = 'running'`,
      [taskId],
    );
    expect(attemptsRunning).toHaveLength(0);
    expect(processesMatching(`sleep ${marker}`)).toEqual([]);
  } finally {
    if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill('SIGKILL');
    await second?.stop();
  }
}, 180_000);

function alive(pid: string): boolean {
  try {
    process.kill(Number(pid), 0);
    return true;
  } catch {
    return false;
  }
}
