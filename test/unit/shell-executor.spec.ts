/* The executor unisolated (SHELL_ISOLATION=none) runs real processes; no mocks. Isolated attempts are
 * tested against the real stack in test/e2e/shell-isolation.e2e.spec.ts. */
import { existsSync } from 'node:fs';
import { ShellExecutor } from '@task-scheduler/activities';
import { SHELL_DEFAULT_LIMITS } from '@task-scheduler/core';
import { processesMatching } from '../support/processes';

const executor = new ShellExecutor({
  path: '/usr/local/bin:/usr/bin:/bin',
  outputCapBytes: 1024,
  killGraceMs: 500,
  isolation: null,
  defaultLimits: SHELL_DEFAULT_LIMITS,
});

test('captures stdout, stderr and the exit code of a command with args', async () => {
  const r = await executor.run({ spec: { script: 'echo out; echo err >&2; exit 4' }, timeoutSeconds: 10 });
  expect(r).toMatchObject({ outcome: 'exited', exitCode: 4, error: null });
  expect(r.stdout.text).toBe('out\n');
  expect(r.stderr.text).toBe('err\n');
});

test('args are passed without a shell', async () => {
  const r = await executor.run({ spec: { command: 'echo', args: ['$HOME', '; rm -rf /'] }, timeoutSeconds: 10 });
  expect(r.stdout.text).toBe('$HOME ; rm -rf /\n');
});

test('the environment is built from scratch: PATH, locale, HOME and the task env only', async () => {
  process.env.EXECUTOR_TEST_CANARY = 'leaked';
  const r = await executor.run({ spec: { command: 'env', env: { A: '1' } }, timeoutSeconds: 10, extraEnv: { TASK_RUN_ID: 'r1' } });
  delete process.env.EXECUTOR_TEST_CANARY;
  const names = r.stdout.text
    .trim()
    .split('\n')
    .map((l) => l.split('=')[0])
    .sort();
  expect(names).toEqual(['A', 'HOME', 'LANG', 'LC_ALL', 'PATH', 'TASK_RUN_ID', 'TMPDIR']);
  expect(r.stdout.text).not.toContain('leaked');
});

test('runs in a fresh working directory that is removed afterwards', async () => {
  const r = await executor.run({ spec: { script: 'pwd; touch file' }, timeoutSeconds: 10 });
  const dir = r.stdout.text.trim();
  expect(dir).toMatch(/task-run-/);
  expect(existsSync(dir)).toBe(false);
});

test('a timeout kills the whole process group', async () => {
  const marker = `${1000 + Math.floor(Math.random() * 1e5)}.5`;
  const r = await executor.run({ spec: { script: `sleep ${marker} & sleep ${marker} & wait` }, timeoutSeconds: 1 });
  expect(r.outcome).toBe('timed_out');
  expect(r.signal).toBe('SIGTERM');
  expect(processesMatching(`sleep ${marker}`)).toEqual([]);
});

test('a process that ignores SIGTERM is killed with SIGKILL after the grace period', async () => {
  const r = await executor.run({ spec: { script: "trap '' TERM; sleep 30 & wait; sleep 30" }, timeoutSeconds: 1 });
  expect(r.outcome).toBe('timed_out');
  expect(r.durationMs).toBeLessThan(10_000);
});

test('an abort (cancellation) kills the group', async () => {
  const controller = new AbortController();
  const marker = `${1000 + Math.floor(Math.random() * 1e5)}.25`;
  setTimeout(() => controller.abort(), 300);
  const r = await executor.run({ spec: { script: `sleep ${marker} & sleep ${marker}` }, timeoutSeconds: 30, signal: controller.signal });
  expect(r.outcome).toBe('cancelled');
  expect(processesMatching(`sleep ${marker}`)).toEqual([]);
});

test('background processes left behind by a finished task are killed', async () => {
  const marker = `${1000 + Math.floor(Math.random() * 1e5)}.75`;
  const r = await executor.run({ spec: { script: `(sleep ${marker} >/dev/null 2>&1 &); echo done` }, timeoutSeconds: 10 });
  expect(r.outcome).toBe('exited');
  expect(r.exitCode).toBe(0);
  expect(processesMatching(`sleep ${marker}`)).toEqual([]);
});

test('an unknown command is a spawn error, not a hang', async () => {
  const r = await executor.run({ spec: { command: 'definitely-not-a-command-xyz' }, timeoutSeconds: 10 });
  expect(r.outcome).toBe('spawn_error');
  expect(r.error).toContain('definitely-not-a-command-xyz');
});

test('heartbeats are reported while the process runs', async () => {
  const beats: number[] = [];
  await executor.run({ spec: { script: 'sleep 1' }, timeoutSeconds: 10, heartbeatMs: 200, onHeartbeat: (p) => beats.push(p.pid) });
  expect(beats.length).toBeGreaterThanOrEqual(3);
});
