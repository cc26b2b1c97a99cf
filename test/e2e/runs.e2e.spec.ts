/* End to end over HTTP: real API, real Temporal dev server and workers, real PostgreSQL. */
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';
import { processesMatching } from '../support/processes';
import { checkReplayAndRecord } from '../support/replay-fixtures';

let stack: TestStack;
const CANARY = `canary-${randomBytes(8).toString('hex')}`;

beforeAll(async () => {
  // A secret in the worker's own environment must never reach a task.
  process.env.TS_WORKER_CANARY_SECRET = CANARY;
  stack = await startStack('runs');
});
afterAll(async () => {
  await stack?.stop();
  delete process.env.TS_WORKER_CANARY_SECRET;
});

async function createTask(body: Record<string, unknown>): Promise<string> {
  const res = await stack.request('POST', '/v1/tasks', { body: { executor: 'shell', ...body } });
  expect(res.status).toBe(201);
  return res.body.id;
}

async function trigger(taskId: string): Promise<any> {
  const res = await stack.request('POST', `/v1/tasks/${taskId}/runs`);
  expect(res.status).toBe(202);
  return res.body;
}

test('a shell task created over HTTP runs to succeeded with its output, findable in Temporal by search attributes', async () => {
  const taskId = await createTask({
    name: 'hello',
    shell: { command: 'echo', args: ['hello'] },
    timeoutSeconds: 60,
    retry: { maximumAttempts: 3 },
  });
  const queued = await trigger(taskId);
  expect(queued).toMatchObject({ taskId, status: 'queued', workflowId: `run-${queued.id}` });
  expect(queued.temporalUiUrl).toContain(`/namespaces/default/workflows/run-${queued.id}`);

  const run = await stack.waitForRun(queued.id);
  expect(run.status).toBe('succeeded');
  expect(run.exitCode).toBe(0);
  expect(run.stdout).toBe('hello\n');
  expect(run.stdoutTruncated).toBe(false);
  expect(run.attemptCount).toBe(1);
  expect(run.attempts).toHaveLength(1);
  expect(run.attempts[0]).toMatchObject({ attempt: 1, status: 'succeeded', exitCode: 0, stdout: 'hello\n' });
  expect(run.attempts[0].workerIdentity).toBeTruthy();
  expect(Date.parse(run.finishedAt)).toBeGreaterThanOrEqual(Date.parse(run.startedAt));

  const connection = await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS });
  try {
    const client = new Client({ connection });
    // The record is final before the workflow closes (it still hands on its slot and checks alerts).
    await client.workflow.getHandle(run.workflowId).result();
    const desc = await client.workflow.getHandle(run.workflowId).describe();
    expect(desc.status.name).toBe('COMPLETED');
    expect(desc.runId).toBe(run.temporalRunId);
    const sa = desc.searchAttributes as Record<string, unknown[]>;
    expect(sa.TaskId).toEqual([taskId]);
    expect(sa.TaskRunId).toEqual([run.id]);
    expect(sa.Trigger).toEqual(['manual']);
    expect(sa.TenantId).toHaveLength(1);

    // The history just produced replays deterministically with the current workflow code (and is the stored fixture).
    await checkReplayAndRecord(stack.config.TEMPORAL_ADDRESS, run.workflowId, 'task-run-succeeded.json');
  } finally {
    await connection.close();
  }
});

test('a failing command ends failed after exactly maximumAttempts attempts, each recorded', async () => {
  const taskId = await createTask({
    name: 'always-fails',
    shell: { script: 'echo "attempt $TASK_ATTEMPT" >&2; exit 3' },
    timeoutSeconds: 30,
    retry: { maximumAttempts: 3, initialIntervalSeconds: 0.2, maximumIntervalSeconds: 0.5 },
  });
  const run = await stack.waitForRun((await trigger(taskId)).id);
  expect(run.status).toBe('failed');
  expect(run.attemptCount).toBe(3);
  expect(run.exitCode).toBe(3);
  expect(run.stderr).toBe('attempt 3\n');
  expect(run.error).toContain('exited with code 3');
  expect(run.attempts.map((a: any) => [a.attempt, a.status, a.exitCode, a.stderr])).toEqual([
    [1, 'failed', 3, 'attempt 1\n'],
    [2, 'failed', 3, 'attempt 2\n'],
    [3, 'failed', 3, 'attempt 3\n'],
  ]);
});

test('a non-retryable exit code stops after the first attempt', async () => {
  const taskId = await createTask({
    name: 'permanent-failure',
    shell: { script: 'exit 7' },
    retry: { maximumAttempts: 5, initialIntervalSeconds: 0.2, nonRetryableExitCodes: [7] },
  });
  const run = await stack.waitForRun((await trigger(taskId)).id);
  expect(run.status).toBe('failed');
  expect(run.attemptCount).toBe(1);
  expect(run.exitCode).toBe(7);
});

test('a command that outlives its timeout ends timed_out and leaves no process behind', async () => {
  const marker = `${Math.floor(Math.random() * 1e6) + 1000}.${Date.now() % 100000}`;
  const taskId = await createTask({
    name: 'too-slow',
    // Two background sleepers and a foreground one, all in the task's process group.
    shell: { script: `sleep ${marker} & sleep ${marker} & sleep ${marker}; wait` },
    timeoutSeconds: 3,
    retry: { maximumAttempts: 1 },
  });
  const queued = await trigger(taskId);
  await stack.waitForRun(queued.id, (r) => r.status === 'running');
  let alive: string[] = [];
  // Three sleepers, plus the shell whose command line names them.
  for (let i = 0; i < 20 && alive.length < 4; i++) {
    await new Promise((r) => setTimeout(r, 100));
    alive = processesMatching(`sleep ${marker}`);
  }
  expect(alive.length).toBeGreaterThanOrEqual(3);

  const run = await stack.waitForRun(queued.id);
  expect(run.status).toBe('timed_out');
  expect(run.error).toContain('timeout of 3s');
  expect(run.attempts[0].status).toBe('timed_out');
  expect(processesMatching(`sleep ${marker}`)).toEqual([]);
});

test("the worker's own environment never reaches a task", async () => {
  const taskId = await createTask({
    name: 'print-env',
    shell: { script: 'env; cat /proc/self/environ | tr "\\0" "\\n"', env: { GREETING: 'hi' } },
  });
  const run = await stack.waitForRun((await trigger(taskId)).id);
  expect(run.status).toBe('succeeded');
  expect(run.stdout).toContain('GREETING=hi');
  expect(run.stdout).toContain(`TASK_RUN_ID=${run.id}`);
  expect(run.stdout).not.toContain(CANARY);
  expect(run.stdout).not.toContain('DATABASE_URL');
  expect(run.stdout).not.toContain(stack.apiKey);
});

test('output beyond the cap is cut and flagged: the run shows its tail, the attempt its head, the store all of it', async () => {
  const printed = stack.config.OUTPUT_CAP_BYTES + 5000;
  const taskId = await createTask({
    name: 'chatty',
    shell: { script: `head -c ${printed} /dev/zero | tr '\\0' 'x'` },
  });
  const run = await stack.waitForRun((await trigger(taskId)).id);
  expect(run.status).toBe('succeeded');
  expect(run.stdoutTruncated).toBe(true);
  // The run's output came through Temporal history: its last OUTPUT_TAIL_BYTES.
  expect(run.stdout).toHaveLength(stack.config.OUTPUT_TAIL_BYTES);
  expect(run.attempts[0].stdout).toHaveLength(stack.config.OUTPUT_CAP_BYTES);
  expect(run.attempts[0].stdoutTruncated).toBe(true);
  expect(run.attempts[0].output.stdout).toEqual({ bytes: printed, storedBytes: printed, truncated: false });
});

test('the same Idempotency-Key returns the same run', async () => {
  const taskId = await createTask({ name: 'idempotent', shell: { command: 'true' } });
  const headers = { 'idempotency-key': `key-${randomBytes(4).toString('hex')}` };
  const results = await Promise.all(Array.from({ length: 5 }, () => stack.request('POST', `/v1/tasks/${taskId}/runs`, { headers })));
  expect(results.map((r) => r.status)).toEqual([202, 202, 202, 202, 202]);
  expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
  const listed = await stack.request('GET', `/v1/runs?taskId=${taskId}`);
  expect(listed.body.items).toHaveLength(1);
});

test('run listing pages with a keyset cursor, newest first, without repeats', async () => {
  const taskId = await createTask({ name: 'listed', shell: { command: 'true' } });
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push((await trigger(taskId)).id);
  const seen: string[] = [];
  let cursor: string | null = null;
  do {
    const page: any = await stack.request('GET', `/v1/runs?taskId=${taskId}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
    expect(page.status).toBe(200);
    seen.push(...page.body.items.map((r: any) => r.id));
    cursor = page.body.nextCursor;
  } while (cursor);
  expect(seen).toEqual([...ids].reverse());
});
