/* Fault: the worker running a shell attempt is stopped (SIGSTOP) for longer than the heartbeat timeout, as a
 * frozen VM, a debugger or a swapped-out host would. Temporal retries the attempt on the other shell worker;
 * the stalled attempt's sandbox must be dead before that retry starts (issue 13). SIGSTOP stops only the node
 * worker: bwrap, the sandbox and the task run on, so without the shell executor's dead man's switch the two
 * attempts would run at once. Real worker processes (apps/worker/dist/main.js: `npm run build` first). */
import { randomBytes } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import { deadManWindowMs } from '@task-scheduler/activities';
import { startStack } from '../support/stack';
import type { AppProcess, TestStack } from '../support/stack';
import { assertRunInvariants, waitFor } from '../support/faults';
import { processesMatching } from '../support/processes';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const localStack = require('../../scripts/lib/local-stack.cjs');

const HEARTBEAT_TIMEOUT_SECONDS = 5;
const HEARTBEAT_SECONDS = 1;
const TICKS = 150;

let stack: TestStack;
let tenant: { tenantId: string; apiKey: string };
let connection: Connection;
let temporal: ChildProcess | null = null;

/**
 * A dev server of this suite's own whose long polls expire after 2 s (1 min by default). A stopped worker's
 * polls stay open on the server, which hands them tasks the worker never reads: with the default, the retry
 * of the stalled attempt would most likely go to the stalled worker itself and be lost to a second heartbeat
 * timeout. Expired, the stopped worker has no poll left, and the retry can only go to the live worker.
 */
async function startTemporal(): Promise<string> {
  const port: number = await localStack.freePort();
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--headless', '--log-level', 'warn'];
  for (const sa of localStack.SEARCH_ATTRIBUTES as string[]) args.push('--search-attribute', `${sa}=Keyword`);
  for (const v of ['matching.useNewMatcher=true', 'matching.enableFairness=true', 'matching.longPollExpirationInterval="2s"'])
    args.push('--dynamic-config-value', v);
  temporal = spawn(localStack.resolveTemporalCli(), args, { stdio: 'ignore' });
  const address = `127.0.0.1:${port}`;
  await waitFor(
    async () => {
      const c = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        const res = await c.operatorService.listSearchAttributes({ namespace: 'default' });
        return (localStack.SEARCH_ATTRIBUTES as string[]).every((sa) => sa in (res.customAttributes ?? {}));
      } finally {
        await c.close();
      }
    },
    { timeoutMs: 60_000, what: 'own Temporal dev server', intervalMs: 250 },
  );
  return address;
}

beforeAll(async () => {
  const address = await startTemporal();
  // The API (in this process) puts the heartbeat timeout into each run's workflow input.
  stack = await startStack('stall', {
    workers: false,
    env: { TEMPORAL_ADDRESS: address, HEARTBEAT_TIMEOUT_SECONDS: String(HEARTBEAT_TIMEOUT_SECONDS) },
  });
  tenant = await stack.createTenant(`stall-${randomBytes(3).toString('hex')}`);
  connection = await Connection.connect({ address });
}, 120_000);
afterAll(async () => {
  await connection?.close();
  await stack?.stop();
  if (temporal && temporal.exitCode === null && temporal.signalCode === null) {
    const t = temporal;
    const exited = new Promise((r) => t.once('exit', r));
    t.kill('SIGTERM');
    await exited;
  }
});

/** Alive and not a zombie (a killed child of the stopped worker stays a zombie until the worker reaps it). */
function running(pid: string): boolean {
  const r = spawnSync('ps', ['-o', 'stat=', '-p', pid], { encoding: 'utf8' });
  return r.status === 0 && !r.stdout.trim().startsWith('Z');
}

interface Mark {
  attempt: number;
  kind: 'start' | 'tick' | 'end';
  at: number;
}

/** Every line an attempt printed, from the run output store (paged). */
async function marksOf(runId: string, attempt: number): Promise<Mark[]> {
  let text = '';
  let after = 0;
  for (let page = 0; page < 100; page++) {
    const res = await stack.request('GET', `/v1/runs/${runId}/logs?attempt=${attempt}&after=${after}`, { apiKey: tenant.apiKey });
    expect(res.status).toBe(200);
    const chunks: { seq: number; text: string }[] = res.body.chunks;
    text += chunks.map((c) => c.text).join('');
    if (chunks.length === 0 || res.body.nextAfter === after) break;
    after = res.body.nextAfter;
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const m = /^(\d+) (start|tick|end) (\d+)$/.exec(line);
      if (!m) throw new Error(`attempt ${attempt} printed an unexpected line: ${JSON.stringify(line)}`);
      return { attempt: Number(m[1]), kind: m[2] as Mark['kind'], at: Number(m[3]) };
    });
}

test('a shell worker stopped past the heartbeat timeout: its sandbox dies before the retry starts elsewhere', async () => {
  const marker = `stall-${randomBytes(6).toString('hex')}`;
  // About 30 s (150 × 200 ms): each line is `<attempt> <start|tick|end> <epoch ms>`.
  const script = [
    `# ${marker}`,
    'a=$TASK_ATTEMPT',
    'echo "$a start $(date +%s%3N)"',
    'i=0',
    `while [ $i -lt ${TICKS} ]; do sleep 0.2; echo "$a tick $(date +%s%3N)"; i=$((i+1)); done`,
    'echo "$a end $(date +%s%3N)"',
  ].join('\n');
  const created = await stack.request('POST', '/v1/tasks', {
    apiKey: tenant.apiKey,
    body: {
      name: 'stalled-worker',
      executor: 'shell',
      shell: { script },
      timeoutSeconds: 120,
      retry: { maximumAttempts: 2, initialIntervalSeconds: 0.1 },
    },
  });
  expect(created.status).toBe(201);

  const shellWorker = (identity: string): AppProcess =>
    stack.spawnApp('worker', {
      WORKER_QUEUES: 'shell',
      WORKER_IDENTITY: identity,
      WORKER_HTTP_PORT: '-1',
      HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS),
    });
  const workflows = stack.spawnApp('worker', { WORKER_QUEUES: 'workflows,http', WORKER_HTTP_PORT: '-1' });
  const shell: Record<string, AppProcess> = { 'stall-a': shellWorker('stall-a'), 'stall-b': shellWorker('stall-b') };
  let stalled: AppProcess | null = null;
  try {
    const queued = await stack.request('POST', `/v1/tasks/${created.body.id}/runs`, { apiKey: tenant.apiKey });
    expect(queued.status).toBe(202);
    const runId: string = queued.body.id;
    const first = await stack.waitForRun(runId, (r) => r.status === 'running' && r.attempts.length === 1, 90_000, tenant.apiKey);
    const stalledIdentity: string = first.attempts[0].workerIdentity;
    const otherIdentity = Object.keys(shell).find((k) => k !== stalledIdentity) as string;
    expect(Object.keys(shell)).toContain(stalledIdentity);
    // Its first lines are stored: the task runs, and a few heartbeats have reached Temporal.
    await waitFor(async () => (await marksOf(runId, 1)).length >= 5, { timeoutMs: 30_000, what: 'attempt 1 printing' });
    const attempt1Processes = processesMatching(marker);
    expect(attempt1Processes.length).toBeGreaterThan(0);

    stalled = shell[stalledIdentity] as AppProcess;
    stalled.child.kill('SIGSTOP');
    const stoppedAt = Date.now();

    // The sandbox (bwrap, its init, the task's shell and its sleep) is gone while the worker stays stopped.
    await waitFor(() => attempt1Processes.every((pid) => !running(pid)), {
      timeoutMs: HEARTBEAT_TIMEOUT_SECONDS * 1000 + 10_000,
      what: "the stalled attempt's processes ending",
      intervalMs: 50,
    });
    const goneAfterMs = Date.now() - stoppedAt;
    // Temporal times attempt 1 out and starts attempt 2 on the other worker, while this one is still stopped.
    const retried = await stack.waitForRun(runId, (r) => r.attempts.length === 2 || r.status !== 'running', 60_000, tenant.apiKey);
    expect(retried.attempts).toHaveLength(2);
    const retryStartedAfterMs = Date.parse(retried.attempts[1].startedAt) - stoppedAt;
    expect(stalled.child.signalCode).toBeNull();
    expect(stalled.child.exitCode).toBeNull();
    stalled.child.kill('SIGCONT');
    stalled = null;

    const run = await stack.waitForRun(runId, undefined, 120_000, tenant.apiKey);
    expect(run.status).toBe('succeeded');
    expect(run.attemptCount).toBe(2);
    expect(
      run.attempts.map((a: { attempt: number; status: string; workerIdentity: string }) => [a.attempt, a.status, a.workerIdentity]),
    ).toEqual([
      [1, 'abandoned', stalledIdentity],
      [2, 'succeeded', otherIdentity],
    ]);

    // Attempt 1: started, ticked, never ended; everything it printed until its kill is stored (the worker
    // read the pipe once it ran again).
    const one = await marksOf(runId, 1);
    expect(one[0]?.kind).toBe('start');
    expect(one.every((m) => m.attempt === 1)).toBe(true);
    expect(one.filter((m) => m.kind === 'end')).toHaveLength(0);
    const ticks1 = one.filter((m) => m.kind === 'tick').length;
    expect(ticks1).toBeGreaterThanOrEqual(4);
    expect(ticks1).toBeLessThan(TICKS);
    expect(one).toHaveLength(ticks1 + 1);
    const lastOfOne = (one[one.length - 1] as Mark).at;
    // The task did run on after SIGSTOP (which reached only node): the switch, not the stop, ended it.
    expect(lastOfOne).toBeGreaterThan(stoppedAt);

    // Attempt 2: the whole task, from start to end.
    const two = await marksOf(runId, 2);
    expect(two.map((m) => m.kind)).toEqual(['start', ...Array.from({ length: TICKS }, () => 'tick'), 'end']);
    expect(two.every((m) => m.attempt === 2)).toBe(true);
    const startOfTwo = (two[0] as Mark).at;
    // Never two attempts at once: attempt 1's last line comes before attempt 2's first.
    expect(lastOfOne).toBeLessThan(startOfTwo);

    console.log(
      [
        `SIGSTOP → last line of attempt 1: ${lastOfOne - stoppedAt} ms; its processes gone: ${goneAfterMs} ms`,
        `(dead man's window ${deadManWindowMs(HEARTBEAT_TIMEOUT_SECONDS * 1000, HEARTBEAT_SECONDS * 1000)} ms);`,
        `retry started: ${retryStartedAfterMs} ms; attempt 2's first line: ${startOfTwo - stoppedAt} ms`,
        `(heartbeat timeout ${HEARTBEAT_TIMEOUT_SECONDS} s); gap between the attempts: ${startOfTwo - lastOfOne} ms`,
      ].join(' '),
    );

    expect(processesMatching(marker)).toEqual([]);
    const client = new Client({ connection, namespace: stack.config.TEMPORAL_NAMESPACE });
    const report = await assertRunInvariants(stack.db, client, { tenantId: tenant.tenantId });
    expect(report.byStatus).toEqual({ succeeded: 1 });
  } finally {
    if (stalled) stalled.child.kill('SIGCONT');
    for (const w of Object.values(shell)) await w.stop();
    await workflows.stop();
  }
}, 170_000);
