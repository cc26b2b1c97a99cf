/* The real worker process (apps/worker/dist/main.js) drains in-flight work on SIGTERM. */
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';

let stack: TestStack;

beforeAll(async () => {
  stack = await startStack('shutdown', { workers: false });
});
afterAll(async () => stack?.stop());

const startWorkerProcess = () => stack.spawnApp('worker', { SHUTDOWN_GRACE_SECONDS: '20', HEARTBEAT_SECONDS: '1', LOG_LEVEL: 'info' });

test('SIGTERM lets the in-flight run finish, then the worker exits 0', async () => {
  const worker = startWorkerProcess();
  try {
    const task = await stack.request('POST', '/v1/tasks', {
      body: { name: 'slow-hello', executor: 'shell', shell: { script: 'sleep 3; echo finished' }, retry: { maximumAttempts: 1 } },
    });
    expect(task.status).toBe(201);
    const queued = await stack.request('POST', `/v1/tasks/${task.body.id}/runs`);
    await stack.waitForRun(queued.body.id, (r) => r.status === 'running', 30_000);

    worker.child.kill('SIGTERM');
    const code = await worker.exited;
    expect(code).toBe(0);
    expect(worker.output()).toContain('draining');

    // The attempt finished on the draining worker; the workflow then completes on any worker.
    const attempt = (await stack.request('GET', `/v1/runs/${queued.body.id}`)).body.attempts[0];
    expect(attempt).toMatchObject({ status: 'succeeded', stdout: 'finished\n' });

    const next = startWorkerProcess();
    try {
      const run = await stack.waitForRun(queued.body.id, undefined, 30_000);
      expect(run.status).toBe('succeeded');
      expect(run.attemptCount).toBe(1);
    } finally {
      await next.stop();
    }
  } finally {
    if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
  }
});
