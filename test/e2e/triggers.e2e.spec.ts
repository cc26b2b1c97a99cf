/* Triggering runs end to end: idempotent triggers under concurrency, per-run
 * overrides, cancel, retry and dead-letter re-drive, sharded runs and the run
 * listing's filters. Real API, real Temporal dev server and workers, real
 * PostgreSQL; everything happens on tenants of this suite's own, so counts and
 * listings are not disturbed by suites running in parallel. */
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { startStack } from '../support/stack';
import { eventually } from '../support/eventually';
import type { TestStack } from '../support/stack';
import { processesMatching } from '../support/processes';
import { checkReplayAndRecord } from '../support/replay-fixtures';

const TIMEOUT_MS = 120_000;
/** Cancellation reaches a shell activity with the next heartbeat: two intervals plus a margin for the kill and the poll. */
const CANCEL_BUDGET_MS = (heartbeatSeconds: number) => 2 * heartbeatSeconds * 1000 + 1500;

let stack: TestStack;
let apiKey: string;
let temporalConnection: Connection;
const suffix = randomBytes(4).toString('hex');
/** Marker files made in /tmp by the tests or by their tasks; removed at the end. */
const markerFiles: string[] = [];

beforeAll(async () => {
  stack = await startStack('triggers');
  ({ apiKey } = await stack.createTenant(`triggers-${suffix}`, { maxConcurrentRuns: 50 }));
  temporalConnection = await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS });
});
afterAll(async () => {
  for (const f of markerFiles) rmSync(f, { force: true });
  await temporalConnection?.close();
  await stack?.stop();
});

type Reply = Awaited<ReturnType<TestStack['request']>>;

function api(method: string, path: string, opts: { body?: unknown; headers?: Record<string, string>; key?: string } = {}): Promise<Reply> {
  return stack.request(method, path, { body: opts.body, headers: opts.headers, apiKey: opts.key ?? apiKey });
}

function hex(): string {
  return randomBytes(4).toString('hex');
}

function markerFile(label: string): string {
  const path = `/tmp/ts-triggers-${label}-${hex()}`;
  markerFiles.push(path);
  return path;
}

async function createTask(body: Record<string, unknown>, key = apiKey): Promise<string> {
  const res = await api('POST', '/v1/tasks', { body: { executor: 'shell', ...body, name: `${body.name}-${hex()}` }, key });
  expect(res.status).toBe(201);
  return res.body.id;
}

async function trigger(taskId: string, overrides?: Record<string, unknown>, key = apiKey): Promise<any> {
  const res = await api('POST', `/v1/tasks/${taskId}/runs`, { body: overrides, key });
  expect(res.status).toBe(202);
  return res.body;
}

function waitForRun(runId: string, until?: (run: any) => boolean, key = apiKey): Promise<any> {
  return stack.waitForRun(runId, until, 60_000, key);
}

async function runCount(taskId: string): Promise<number> {
  const [{ n }] = await stack.db.query(`SELECT count(*)::int AS n FROM runs WHERE task_id = $1`, [taskId]);
  return n;
}

/** Polls `probe` until it returns a value `done` accepts, or fails after `timeoutMs`. */
async function deadLetterIds(): Promise<string[]> {
  const res = await api('GET', '/v1/dead-letters?limit=200');
  expect(res.status).toBe(200);
  return res.body.items.map((r: any) => r.id);
}

/** A `sleep` argument no other process on the machine has, so pgrep finds exactly this task's processes. */
function uniqueSleepSeconds(): string {
  return `100.${Math.floor(Math.random() * 1e6)}${Date.now() % 1000}`;
}

describe('idempotent triggers', () => {
  test(
    '50 concurrent triggers with one Idempotency-Key and body start exactly one run and one workflow',
    async () => {
      const taskId = await createTask({ name: 'idempotent', shell: { command: 'true' } });
      const key = `key-${hex()}`;
      const body = { env: { A: '1' } };
      const replies = await Promise.all(
        Array.from({ length: 50 }, () => api('POST', `/v1/tasks/${taskId}/runs`, { body, headers: { 'idempotency-key': key } })),
      );
      expect(replies.map((r) => r.status)).toEqual(Array(50).fill(202));
      const ids = new Set(replies.map((r) => r.body.id));
      expect(ids.size).toBe(1);
      const [runId] = ids;
      expect(replies.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(49);
      expect(replies.every((r) => r.headers.get('location') === `/v1/runs/${runId}`)).toBe(true);
      expect(await runCount(taskId)).toBe(1);

      // Visibility is eventually consistent: wait for the workflow to show, then make sure no second one follows.
      const client = new Client({ connection: temporalConnection });
      const listWorkflows = async (): Promise<string[]> => {
        const ids: string[] = [];
        for await (const wf of client.workflow.list({ query: `TaskId = "${taskId}"` })) ids.push(wf.workflowId);
        return ids;
      };
      await eventually(listWorkflows, (w) => w.length >= 1, 10_000);
      await new Promise((r) => setTimeout(r, 1000));
      expect(await listWorkflows()).toEqual([`run-${runId}`]);

      const run = await waitForRun(runId);
      expect(run.status).toBe('succeeded');
      expect(run.overrides).toEqual(body);

      // Same key, different parameters (also none at all): refused, nothing written.
      for (const other of [{ env: { A: '2' } }, undefined]) {
        const reused = await api('POST', `/v1/tasks/${taskId}/runs`, { body: other, headers: { 'idempotency-key': key } });
        expect(reused.status).toBe(422);
        expect(reused.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
        expect(reused.body.error.details).toEqual([expect.objectContaining({ field: 'idempotency-key', runId })]);
      }
      expect(await runCount(taskId)).toBe(1);

      // The same parameters with the keys in another order are the same request.
      const key2 = `key-${hex()}`;
      const first = await api('POST', `/v1/tasks/${taskId}/runs`, {
        body: { env: { a: '1', b: '2' }, args: ['x'] },
        headers: { 'idempotency-key': key2 },
      });
      const reordered = await api('POST', `/v1/tasks/${taskId}/runs`, {
        body: { args: ['x'], env: { b: '2', a: '1' } },
        headers: { 'idempotency-key': key2 },
      });
      expect([first.status, reordered.status]).toEqual([202, 202]);
      expect(reordered.body.id).toBe(first.body.id);
      expect(first.headers.get('idempotent-replayed')).toBeNull();
      expect(reordered.headers.get('idempotent-replayed')).toBe('true');
      expect(await runCount(taskId)).toBe(2);
      await waitForRun(first.body.id);
    },
    TIMEOUT_MS,
  );
});

describe('run overrides', () => {
  test('an http URL or an alert webhook carrying credentials is refused, nothing stored', async () => {
    for (const [body, field] of [
      [{ http: { method: 'GET', url: 'https://user:pw@api.example.com/x' } }, 'http.url'],
      [
        { http: { method: 'GET', url: 'https://api.example.com/x' }, alerts: { webhookUrl: 'https://hook:pw@hooks.example.com/' } },
        'alerts.webhookUrl',
      ],
    ] as const) {
      const res = await api('POST', '/v1/tasks', { body: { name: `creds-${hex()}`, executor: 'http', ...body } });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
      expect(JSON.stringify(res.body.error.details)).toContain(field);
    }
    const settings = await api('PUT', '/v1/alert-settings', { body: { webhookUrl: 'https://hook:pw@hooks.example.com/' } });
    expect(settings.status).toBe(400);
    const [{ n }] = await stack.db.query(`SELECT count(*)::int AS n FROM tasks WHERE name LIKE 'creds-%'`);
    expect(n).toBe(0);
  });

  test(
    "env and args given at trigger time reach the process and are echoed in the run's overrides",
    async () => {
      const taskId = await createTask({
        name: 'printenv',
        shell: { command: 'printenv', args: ['A'], env: { A: 'from-task', B: 'b-from-task' } },
      });
      const plain = await waitForRun((await trigger(taskId)).id);
      expect(plain).toMatchObject({ status: 'succeeded', stdout: 'from-task\n', overrides: {} });

      const overrides = { env: { A: 'from-trigger' }, args: ['A', 'B'] };
      const queued = await trigger(taskId, overrides);
      expect(queued.overrides).toEqual(overrides);
      const run = await waitForRun(queued.id);
      expect(run.status).toBe('succeeded');
      // printenv prints each named variable in order: the overridden A, and B from the task's own env.
      expect(run.stdout).toBe('from-trigger\nb-from-task\n');
      expect(run.overrides).toEqual(overrides);
    },
    TIMEOUT_MS,
  );

  test(
    'a script task takes env overrides but refuses args',
    async () => {
      const taskId = await createTask({ name: 'echo-a', shell: { script: 'echo "A=$A"', env: { A: 'task' } } });
      const run = await waitForRun((await trigger(taskId, { env: { A: 'override' } })).id);
      expect(run).toMatchObject({ status: 'succeeded', stdout: 'A=override\n', overrides: { env: { A: 'override' } } });

      const refused = await api('POST', `/v1/tasks/${taskId}/runs`, { body: { args: ['x'] } });
      expect(refused.status).toBe(400);
      expect(refused.body.error.code).toBe('VALIDATION_FAILED');
      expect(refused.body.error.details).toEqual([expect.objectContaining({ field: 'overrides.args' })]);
      expect(await runCount(taskId)).toBe(1);
    },
    TIMEOUT_MS,
  );

  test(
    "overrides of the other executor's kind are refused with the field named, and nothing is written",
    async () => {
      const shellTask = await createTask({ name: 'shell-kind', shell: { command: 'true' } });
      for (const body of [{ variables: { x: '1' } }, { headers: { 'x-a': '1' } }, { body: 'payload' }]) {
        const res = await api('POST', `/v1/tasks/${shellTask}/runs`, { body });
        expect(res.status).toBe(400);
        expect(res.body.error.code).toBe('VALIDATION_FAILED');
        expect(res.body.error.details).toEqual([expect.objectContaining({ field: `overrides.${Object.keys(body)[0]}` })]);
      }
      expect(await runCount(shellTask)).toBe(0);

      const httpTask = await createTask({ name: 'http-kind', executor: 'http', http: { method: 'GET', url: 'https://example.com/{id}' } });
      const res = await api('POST', `/v1/tasks/${httpTask}/runs`, { body: { env: { A: '1' } } });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
      expect(res.body.error.details).toEqual([expect.objectContaining({ field: 'overrides.env' })]);
      expect(await runCount(httpTask)).toBe(0);
    },
    TIMEOUT_MS,
  );
});

describe('retry and dead letters', () => {
  test(
    'a failed run is a dead letter; retry and re-drive start linked runs with the same overrides, once each',
    async () => {
      // The task is "fixed" by a file the test writes on the host, which only an unisolated task can see.
      const isolated = { stack, apiKey };
      stack = await startStack('triggers-unisolated', { env: { SHELL_ISOLATION: 'none' } });
      ({ apiKey } = await stack.createTenant(`triggers-u-${suffix}`, { maxConcurrentRuns: 50 }));
      try {
        const fix = markerFile('fix');
        const taskId = await createTask({
          name: 'needs-fix',
          shell: { script: `[ -f ${fix} ] || { echo "no ${fix}" >&2; exit 1; }; echo "fixed $X"` },
          retry: { maximumAttempts: 1 },
        });
        const overrides = { env: { X: 'x1' } };
        const first = await waitForRun((await trigger(taskId, overrides)).id);
        expect(first).toMatchObject({ status: 'failed', exitCode: 1, attemptCount: 1, deadLetter: true, redrivenByRunId: null });
        expect(await deadLetterIds()).toContain(first.id);

        // A run that has not ended can be neither retried nor re-driven; one that was cancelled is no dead letter.
        const sleeperTask = await createTask({ name: 'sleeper', shell: { command: 'sleep', args: ['30'] } });
        const sleeping = await trigger(sleeperTask);
        await waitForRun(sleeping.id, (r) => r.status === 'running');
        for (const path of [`/v1/runs/${sleeping.id}/retry`, `/v1/dead-letters/${sleeping.id}/redrive`]) {
          const res = await api('POST', path);
          expect(res.status).toBe(409);
          expect(res.body.error.code).toBe('RUN_NOT_FINISHED');
        }
        expect((await api('POST', `/v1/runs/${sleeping.id}/cancel`)).status).toBe(202);
        expect((await waitForRun(sleeping.id)).status).toBe('cancelled');
        const cancelledRedrive = await api('POST', `/v1/dead-letters/${sleeping.id}/redrive`);
        expect(cancelledRedrive.status).toBe(422);
        expect(cancelledRedrive.body.error.code).toBe('NOT_A_DEAD_LETTER');

        const retried = await api('POST', `/v1/runs/${first.id}/retry`);
        expect(retried.status).toBe(202);
        expect(retried.body).toMatchObject({ taskId, trigger: 'retry', retryOfRunId: first.id, overrides });
        expect(retried.headers.get('location')).toBe(`/v1/runs/${retried.body.id}`);
        const second = await waitForRun(retried.body.id);
        expect(second).toMatchObject({ status: 'failed', deadLetter: true, trigger: 'retry', retryOfRunId: first.id });

        const firstAfter = (await api('GET', `/v1/runs/${first.id}`)).body;
        expect(firstAfter).toMatchObject({ status: 'failed', deadLetter: false, redrivenByRunId: second.id });
        const letters = await deadLetterIds();
        expect(letters).not.toContain(first.id);
        expect(letters).toContain(second.id);

        const again = await api('POST', `/v1/dead-letters/${first.id}/redrive`);
        expect(again.status).toBe(409);
        expect(again.body.error.code).toBe('RUN_ALREADY_REDRIVEN');
        expect(again.body.error.details).toEqual([expect.objectContaining({ runId: second.id })]);

        // "Fix" the task, then re-drive the second failure; concurrent re-drives of it start exactly one run.
        writeFileSync(fix, '', { mode: 0o644 });
        const redrives = await Promise.all(Array.from({ length: 5 }, () => api('POST', `/v1/dead-letters/${second.id}/redrive`)));
        expect(redrives.map((r) => r.status).sort()).toEqual([202, 409, 409, 409, 409]);
        const redriven = redrives.find((r) => r.status === 202) as Reply;
        expect(redrives.filter((r) => r.status === 409).every((r) => r.body.error.code === 'RUN_ALREADY_REDRIVEN')).toBe(true);
        expect(redriven.body).toMatchObject({ trigger: 'retry', retryOfRunId: second.id, overrides });
        const third = await waitForRun(redriven.body.id);
        expect(third).toMatchObject({ status: 'succeeded', stdout: 'fixed x1\n', deadLetter: false });

        const secondAfter = (await api('GET', `/v1/runs/${second.id}`)).body;
        expect(secondAfter).toMatchObject({ deadLetter: false, redrivenByRunId: third.id });
        expect(await deadLetterIds()).not.toContain(second.id);

        const notDead = await api('POST', `/v1/dead-letters/${third.id}/redrive`);
        expect(notDead.status).toBe(422);
        expect(notDead.body.error.code).toBe('NOT_A_DEAD_LETTER');
        expect(await runCount(taskId)).toBe(3);

        // A plain retry of a run that was already re-driven is still allowed; it leaves the re-drive link alone.
        const retriedAgain = await api('POST', `/v1/runs/${first.id}/retry`);
        expect(retriedAgain.status).toBe(202);
        expect(retriedAgain.body).toMatchObject({ trigger: 'retry', retryOfRunId: first.id });
        expect((await waitForRun(retriedAgain.body.id)).status).toBe('succeeded');
        expect((await api('GET', `/v1/runs/${first.id}`)).body.redrivenByRunId).toBe(second.id);
        expect(await runCount(taskId)).toBe(4);
      } finally {
        await stack.stop();
        ({ stack, apiKey } = isolated);
      }
    },
    TIMEOUT_MS,
  );
});

describe('cancel', () => {
  test(
    'cancelling a run whose workflow was terminated from outside ends the record and frees its slot',
    async () => {
      const tenant = await stack.createTenant(`triggers-term-${hex()}`, { maxConcurrentRuns: 1 });
      const seconds = uniqueSleepSeconds();
      const taskId = await createTask({ name: 'terminated', shell: { command: 'sleep', args: [seconds] } }, tenant.apiKey);
      const long = await trigger(taskId, undefined, tenant.apiKey);
      const running = await waitForRun(long.id, (r) => r.status === 'running', tenant.apiKey);
      const waiting = await trigger(taskId, undefined, tenant.apiKey);
      // It asked for the slot and was refused: the run that frees it is to wake it.
      await eventually(
        async () => (await stack.db.query(`SELECT slot_refused_at FROM runs WHERE id = $1`, [waiting.id]))[0]?.slot_refused_at,
        (at) => Boolean(at),
        30_000,
      );

      const connection = await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS });
      try {
        const client = new Client({ connection });
        await client.workflow.getHandle(running.workflowId).terminate('operator test');
        // The terminated workflow never recorded an end: the run still holds the tenant's only slot.
        expect((await api('GET', `/v1/runs/${long.id}`, { key: tenant.apiKey })).body.status).toBe('running');

        const cancel = await api('POST', `/v1/runs/${long.id}/cancel`, { key: tenant.apiKey });
        expect(cancel.status).toBe(202);
        expect(cancel.body).toMatchObject({ status: 'cancelled', error: 'cancelled; its workflow is terminated' });
        // The waiting run takes the freed slot: the cancel signals it, as a run's own end would (not its re-check).
        const signals = ((await client.workflow.getHandle(waiting.workflowId).fetchHistory()).events ?? []).filter(
          (e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'runSlotFreed',
        );
        expect(signals).toHaveLength(1);
      } finally {
        await connection.close();
      }
      const next = await waitForRun(waiting.id, (r) => r.status !== 'queued', tenant.apiKey);
      expect(next.admittedAt).not.toBeNull();
      expect((await api('POST', `/v1/runs/${waiting.id}/cancel`, { key: tenant.apiKey })).status).toBe(202);
      await waitForRun(waiting.id, undefined, tenant.apiKey);
      await eventually(
        () => processesMatching(`sleep ${seconds}`),
        (p) => p.length === 0,
        20_000,
      );
    },
    TIMEOUT_MS,
  );

  test(
    'cancelling a running shell run kills its whole process group within two heartbeats and records the attempt cancelled',
    async () => {
      const seconds = uniqueSleepSeconds();
      const pattern = `sleep ${seconds}`;
      const taskId = await createTask({
        name: 'cancel-me',
        shell: { script: `sleep ${seconds} & sleep ${seconds} & wait` },
        timeoutSeconds: 300,
        retry: { maximumAttempts: 3 },
      });
      const queued = await trigger(taskId);
      await waitForRun(queued.id, (r) => r.status === 'running');
      // Two sleepers and the shell whose command line names them.
      await eventually(
        () => processesMatching(pattern),
        (p) => p.length >= 3,
        10_000,
        50,
      );

      const started = Date.now();
      const cancel = await api('POST', `/v1/runs/${queued.id}/cancel`);
      expect(cancel.status).toBe(202);
      await eventually(
        () => processesMatching(pattern),
        (p) => p.length === 0,
        15_000,
        25,
      );
      const elapsedMs = Date.now() - started;
      const heartbeatSeconds = stack.config.HEARTBEAT_SECONDS;
      console.log(`cancel: processes gone ${elapsedMs} ms after POST cancel (budget ${CANCEL_BUDGET_MS(heartbeatSeconds)} ms)`);
      expect(elapsedMs).toBeLessThanOrEqual(CANCEL_BUDGET_MS(heartbeatSeconds));

      const run = await waitForRun(queued.id);
      expect(run.status).toBe('cancelled');
      expect(run.deadLetter).toBe(false);
      expect(run.finishedAt).toBeTruthy();
      // A cancelled attempt is not retried.
      expect(run.attempts.map((a: any) => [a.shardIndex, a.attempt, a.status])).toEqual([[0, 1, 'cancelled']]);

      const again = await api('POST', `/v1/runs/${queued.id}/cancel`);
      expect(again.status).toBe(409);
      expect(again.body.error.code).toBe('RUN_ALREADY_FINISHED');
    },
    TIMEOUT_MS,
  );

  test(
    'a run still queued behind its tenant concurrency limit ends cancelled without any attempt',
    async () => {
      const busy = await stack.createTenant(`triggers-busy-${hex()}`, { maxConcurrentRuns: 1 });
      const seconds = uniqueSleepSeconds();
      const taskId = await createTask({ name: 'busy', shell: { command: 'sleep', args: [seconds] }, timeoutSeconds: 300 }, busy.apiKey);
      const long = await trigger(taskId, undefined, busy.apiKey);
      await waitForRun(long.id, (r) => r.status === 'running', busy.apiKey);
      const waiting = await trigger(taskId, undefined, busy.apiKey);
      // It stays queued, without a slot, while the first one runs.
      await new Promise((r) => setTimeout(r, 1500));
      expect(await api('GET', `/v1/runs/${waiting.id}`, { key: busy.apiKey }).then((r) => r.body)).toMatchObject({
        status: 'queued',
        admittedAt: null,
      });

      expect((await api('POST', `/v1/runs/${waiting.id}/cancel`, { key: busy.apiKey })).status).toBe(202);
      const cancelled = await waitForRun(waiting.id, undefined, busy.apiKey);
      expect(cancelled).toMatchObject({ status: 'cancelled', attemptCount: 0, admittedAt: null, startedAt: null, deadLetter: false });
      expect(cancelled.attempts).toEqual([]);
      await checkReplayAndRecord(stack.config.TEMPORAL_ADDRESS, cancelled.workflowId, 'task-run-cancelled-while-queued.json');
      expect(processesMatching(`sleep ${seconds}`).length).toBeGreaterThanOrEqual(1);
      expect((await api('GET', `/v1/runs/${long.id}`, { key: busy.apiKey })).body.status).toBe('running');

      expect((await api('POST', `/v1/runs/${long.id}/cancel`, { key: busy.apiKey })).status).toBe(202);
      expect((await waitForRun(long.id, undefined, busy.apiKey)).status).toBe('cancelled');
      await eventually(
        () => processesMatching(`sleep ${seconds}`),
        (p) => p.length === 0,
        10_000,
        100,
      );
    },
    TIMEOUT_MS,
  );
});

describe('sharded runs', () => {
  test(
    'a shard that fails once is retried alone and the run succeeds',
    async () => {
      const taskId = await createTask({
        name: 'sharded',
        shardCount: 3,
        shell: {
          script: [
            'echo "shard $SHARD_INDEX of $SHARD_TOTAL"',
            'if [ "$SHARD_INDEX" = 1 ] && [ "$TASK_ATTEMPT" = 1 ]; then exit 1; fi',
          ].join('\n'),
        },
        retry: { maximumAttempts: 3, initialIntervalSeconds: 0.1 },
      });
      const run = await waitForRun((await trigger(taskId)).id);
      expect(run.status).toBe('succeeded');
      expect(run.shardCount).toBe(3);
      expect(run.attemptCount).toBe(2);
      expect(run.shards.map((s: any) => [s.shardIndex, s.status, s.attemptCount, s.stdout])).toEqual([
        [0, 'succeeded', 1, 'shard 0 of 3\n'],
        [1, 'succeeded', 2, 'shard 1 of 3\n'],
        [2, 'succeeded', 1, 'shard 2 of 3\n'],
      ]);
      expect(run.attempts.map((a: any) => [a.shardIndex, a.attempt, a.status, a.exitCode, a.stdout])).toEqual([
        [0, 1, 'succeeded', 0, 'shard 0 of 3\n'],
        [1, 1, 'failed', 1, 'shard 1 of 3\n'],
        [1, 2, 'succeeded', 0, 'shard 1 of 3\n'],
        [2, 1, 'succeeded', 0, 'shard 2 of 3\n'],
      ]);
      await checkReplayAndRecord(stack.config.TEMPORAL_ADDRESS, run.workflowId, 'task-run-sharded-shard-retried.json');
    },
    TIMEOUT_MS,
  );

  test(
    'a shard that always fails fails the run, naming the shard; the other shards keep their success',
    async () => {
      const taskId = await createTask({
        name: 'sharded-broken',
        shardCount: 3,
        shell: { script: 'echo "shard $SHARD_INDEX"; if [ "$SHARD_INDEX" = 2 ]; then echo "shard 2 is broken" >&2; exit 4; fi' },
        retry: { maximumAttempts: 2, initialIntervalSeconds: 0.1 },
      });
      const run = await waitForRun((await trigger(taskId)).id);
      expect(run.status).toBe('failed');
      expect(run.deadLetter).toBe(true);
      expect(run.attemptCount).toBe(2);
      expect(run.error).toContain('shard 2 failed');
      expect(run.error).toContain('exited with code 4');
      expect(run.error).not.toMatch(/shard [01]\b/);
      expect(run.shards.map((s: any) => [s.shardIndex, s.status, s.attemptCount, s.exitCode])).toEqual([
        [0, 'succeeded', 1, 0],
        [1, 'succeeded', 1, 0],
        [2, 'failed', 2, 4],
      ]);
      expect(run.shards[2].stderr).toBe('shard 2 is broken\n');
      expect(run.attempts.map((a: any) => [a.shardIndex, a.attempt, a.status])).toEqual([
        [0, 1, 'succeeded'],
        [1, 1, 'succeeded'],
        [2, 1, 'failed'],
        [2, 2, 'failed'],
      ]);
    },
    TIMEOUT_MS,
  );
});

describe('run listing filters', () => {
  test(
    'trigger, status, task and time-range filters each return exactly the expected runs of a task, newest first',
    async () => {
      const taskId = await createTask({
        name: 'listed',
        shell: { script: 'if [ "$OUTCOME" = fail ]; then exit 1; fi' },
        retry: { maximumAttempts: 1 },
      });
      const otherTask = await createTask({ name: 'listed-other', shell: { command: 'true' } });
      const r1 = await waitForRun((await trigger(taskId)).id);
      const r2 = await waitForRun((await trigger(taskId, { env: { OUTCOME: 'fail' } })).id);
      const retried = await api('POST', `/v1/runs/${r2.id}/retry`);
      expect(retried.status).toBe(202);
      const r3 = await waitForRun(retried.body.id);
      const r4 = await waitForRun((await trigger(taskId)).id);
      const other = await waitForRun((await trigger(otherTask)).id);
      expect([r1, r2, r3, r4].map((r) => [r.status, r.trigger])).toEqual([
        ['succeeded', 'manual'],
        ['failed', 'manual'],
        ['failed', 'retry'],
        ['succeeded', 'manual'],
      ]);

      const list = async (query: string): Promise<string[]> => {
        const res = await api('GET', `/v1/runs?${query}`);
        expect(res.status).toBe(200);
        expect(res.body.nextCursor).toBeNull();
        return res.body.items.map((r: any) => r.id);
      };
      const t = `taskId=${taskId}`;
      expect(await list(t)).toEqual([r4.id, r3.id, r2.id, r1.id]);
      expect(await list(`taskId=${otherTask}`)).toEqual([other.id]);
      expect(await list(`${t}&trigger=retry`)).toEqual([r3.id]);
      expect(await list(`${t}&trigger=manual`)).toEqual([r4.id, r2.id, r1.id]);
      expect(await list(`${t}&trigger=schedule`)).toEqual([]);
      expect(await list(`${t}&status=failed`)).toEqual([r3.id, r2.id]);
      expect(await list(`${t}&status=succeeded`)).toEqual([r4.id, r1.id]);
      expect(await list(`${t}&status=failed&trigger=manual`)).toEqual([r2.id]);
      // Across the tenant's tasks, the retry filter still finds only this task's retry among retries of this test.
      expect(
        await list(`trigger=retry&limit=200`).then((ids) => ids.filter((id) => [r1, r2, r3, r4, other].some((r) => r.id === id))),
      ).toEqual([r3.id]);

      // Time bounds half-way between consecutive runs: `from` is inclusive, `to` exclusive.
      const between = (a: any, b: any): Date => new Date((Date.parse(a.queuedAt) + Date.parse(b.queuedAt)) / 2);
      const from = between(r1, r2).toISOString();
      const to = between(r3, r4).toISOString();
      expect(await list(`${t}&from=${from}&to=${to}`)).toEqual([r3.id, r2.id]);
      expect(await list(`${t}&from=${to}`)).toEqual([r4.id]);
      expect(await list(`${t}&to=${from}`)).toEqual([r1.id]);
      expect(await list(`${t}&from=${from}&to=${from}`)).toEqual([]);
      // The same instant written with a UTC offset.
      const withOffset = (d: Date): string => `${new Date(d.getTime() + 2 * 3600_000).toISOString().slice(0, -1)}+02:00`;
      expect(
        await list(`${t}&from=${encodeURIComponent(withOffset(new Date(from)))}&to=${encodeURIComponent(withOffset(new Date(to)))}`),
      ).toEqual([r3.id, r2.id]);
      expect(await list(`${t}&status=failed&from=${to}`)).toEqual([]);
    },
    TIMEOUT_MS,
  );

  test(
    "paging with limit=2 returns each of a task's runs once, newest first, also under a filter",
    async () => {
      const taskId = await createTask({ name: 'paged', shell: { command: 'true' } });
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await trigger(taskId)).id);
      await Promise.all(ids.map((id) => waitForRun(id)));

      const pages = async (query: string, limit: number): Promise<string[][]> => {
        const out: string[][] = [];
        let cursor: string | null = null;
        do {
          const res: Reply = await api('GET', `/v1/runs?${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
          expect(res.status).toBe(200);
          expect(res.body.items.length).toBeLessThanOrEqual(limit);
          out.push(res.body.items.map((r: any) => r.id));
          cursor = res.body.nextCursor;
        } while (cursor && out.length < 20);
        return out;
      };
      const newestFirst = [...ids].reverse();
      const byTwo = await pages(`taskId=${taskId}`, 2);
      expect(byTwo).toEqual([newestFirst.slice(0, 2), newestFirst.slice(2, 4), newestFirst.slice(4)]);
      // An exact multiple of the page size ends without an empty last page.
      const filtered = await pages(`taskId=${taskId}&status=succeeded&to=${new Date(Date.now() + 60_000).toISOString()}`, 5);
      expect(filtered).toEqual([newestFirst]);
    },
    TIMEOUT_MS,
  );

  test(
    'malformed filters are refused with 400 VALIDATION_FAILED naming the field',
    async () => {
      for (const [query, field] of [
        ['from=yesterday', 'from'],
        ['from=2026-13-01T00:00:00Z', 'from'],
        ['to=not-a-date', 'to'],
        ['status=exploded', 'status'],
        ['trigger=webhook', 'trigger'],
        ['taskId=not-a-uuid', 'taskId'],
        ['limit=0', 'limit'],
      ]) {
        const res = await api('GET', `/v1/runs?${query}`);
        expect({ query, status: res.status, code: res.body?.error?.code }).toEqual({ query, status: 400, code: 'VALIDATION_FAILED' });
        expect(res.body.error.details).toEqual(expect.arrayContaining([expect.objectContaining({ field })]));
      }
      const badCursor = await api('GET', '/v1/runs?cursor=bm90LWEtY3Vyc29y');
      expect(badCursor.status).toBe(400);
      expect(badCursor.body.error.code).toBe('INVALID_CURSOR');
    },
    TIMEOUT_MS,
  );
});
