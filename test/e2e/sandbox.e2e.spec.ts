/* Opt-in bubblewrap sandbox for shell tasks. The sandboxed run needs bwrap on this machine (.ci/run
 * installs it where it can); the refusal is tested on a worker configured without it (BWRAP_PATH=none). */
import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { findBwrap } from '@task-scheduler/worker';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';

let stack: TestStack;
let canary: Server;
let connections = 0;
const bwrap = findBwrap(undefined);

beforeAll(async () => {
  stack = await startStack('sandbox');
  canary = createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((r) => canary.listen(0, '127.0.0.1', r));
});
afterAll(async () => {
  await stack?.stop();
  canary?.close();
});

async function runSandboxed(name: string, script: string, on: TestStack = stack): Promise<any> {
  const task = await on.request('POST', '/v1/tasks', {
    body: { name, executor: 'shell', shell: { script, sandbox: true, allowedExitCodes: [0] }, retry: { maximumAttempts: 2 } },
  });
  expect(task.status).toBe(201);
  expect(task.body.shell.sandbox).toBe(true);
  const queued = await on.request('POST', `/v1/tasks/${task.body.id}/runs`);
  return on.waitForRun(queued.body.id, undefined, 60_000);
}

(bwrap ? test : test.skip)('with bwrap: no network, only its own processes, a read-only system', async () => {
  const port = (canary.address() as AddressInfo).port;
  const run = await runSandboxed(
    'sandboxed',
    [
      `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port}' 2>/dev/null && echo network=yes || echo network=no`,
      `echo processes=$(ls /proc | grep -c '^[0-9]')`,
      `touch /etc/sandbox-probe 2>/dev/null && echo etc=writable || echo etc=read-only`,
      'echo here > ./file && cat ./file',
    ].join('; '),
  );
  expect(run.status).toBe('succeeded');
  expect(run.stdout).toContain('network=no');
  expect(run.stdout).toContain('etc=read-only');
  expect(run.stdout).toContain('here'); // the working directory stays writable
  const processes = Number(/processes=(\d+)/.exec(run.stdout)?.[1]);
  expect(processes).toBeGreaterThan(0);
  expect(processes).toBeLessThan(10); // a fresh PID namespace: the task's own few processes, not the host's
  expect(connections).toBe(0);
});

test('without bwrap: a sandboxed task fails at once with a clear error, not retried', async () => {
  const without = await startStack('no-sandbox', { env: { BWRAP_PATH: 'none' } });
  let run: any;
  try {
    run = await runSandboxed('sandbox-unavailable', 'echo should-not-run', without);
  } finally {
    await without.stop();
  }
  expect(run.status).toBe('failed');
  expect(run.attemptCount).toBe(1);
  expect(run.error).toContain('bwrap');
  expect(run.stdout ?? '').not.toContain('should-not-run');
});
