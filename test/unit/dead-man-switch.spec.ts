/* The dead man's switch with real processes: a small "worker" (node, running the built switch) arms it on a
 * `sleep` in its own process group; the test then stops or kills that worker, as a fault would. No mocks. */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ShellExecutor, deadManWindowMs } from '@task-scheduler/activities';
import { SHELL_DEFAULT_LIMITS } from '@task-scheduler/core';

const BUILT = join(__dirname, '../../activities/dist/shell/dead-man-switch.js');
const WINDOW_MS = 1000;

interface FakeWorker {
  node: ChildProcess;
  victim: number;
  watcher: number;
  /** Lines the worker printed after its start line. */
  lines: string[];
}

/** A node process that starts `sleep 60` in its own group and arms the switch on that group. */
async function startWorker(after: 'feed' | 'disarm-after-3-windows'): Promise<FakeWorker> {
  const script = `
    const { spawn } = require('node:child_process');
    const { DeadManSwitch } = require(${JSON.stringify(BUILT)});
    const victim = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
    DeadManSwitch.arm({ groups: [victim.pid] }, { windowMs: ${WINDOW_MS}, feedMs: 100 }).then((s) => {
      console.log(JSON.stringify({ victim: victim.pid, watcher: s.pid }));
      if (${JSON.stringify(after)} === 'disarm-after-3-windows') setTimeout(() => { s.disarm(); console.log('disarmed'); }, ${3 * WINDOW_MS});
      setInterval(() => undefined, 1000);
    });`;
  const node = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const lines: string[] = [];
  const first = await new Promise<{ victim: number; watcher: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fake worker did not start: ${out}`)), 10_000);
    node.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const all = out.split('\n').filter(Boolean);
      if (all.length >= 1) {
        clearTimeout(timer);
        resolve(JSON.parse(all[0] as string));
      }
      lines.splice(0, lines.length, ...all.slice(1));
    });
  });
  return { node, ...first, lines };
}

function alive(pid: number): boolean {
  // A zombie (killed, not yet reaped by its stopped parent) is dead for this purpose.
  const r = spawnSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' });
  return r.status === 0 && !r.stdout.trim().startsWith('Z');
}

async function until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

const workers: FakeWorker[] = [];
afterEach(() => {
  for (const w of workers.splice(0)) {
    for (const kill of [
      () => process.kill(w.node.pid as number, 'SIGKILL'),
      () => process.kill(-w.victim, 'SIGKILL'),
      () => process.kill(w.watcher, 'SIGKILL'),
    ]) {
      try {
        kill();
      } catch {
        // already gone
      }
    }
  }
});

test('fed, the group lives past several windows; disarmed, it lives on and the watcher exits', async () => {
  const w = await startWorker('disarm-after-3-windows');
  workers.push(w);
  expect(await until(() => w.lines.includes('disarmed'), 10_000)).toBe(true);
  expect(alive(w.victim)).toBe(true);
  expect(await until(() => !alive(w.watcher), 5_000)).toBe(true);
  // Well past the window: nothing fired.
  await new Promise((r) => setTimeout(r, 2 * WINDOW_MS));
  expect(alive(w.victim)).toBe(true);
});

test('its worker stopped (SIGSTOP), the group is SIGKILLed within the window', async () => {
  const w = await startWorker('feed');
  workers.push(w);
  await new Promise((r) => setTimeout(r, 2 * WINDOW_MS));
  expect(alive(w.victim)).toBe(true);
  process.kill(w.node.pid as number, 'SIGSTOP');
  const stoppedAt = Date.now();
  try {
    // Generous deadline: the window plus scheduling slack on a loaded machine.
    expect(await until(() => !alive(w.victim), WINDOW_MS + 5_000)).toBe(true);
    console.log(`dead man's switch: group gone ${Date.now() - stoppedAt} ms after SIGSTOP (window ${WINDOW_MS} ms)`);
    expect(alive(w.node.pid as number)).toBe(true); // the worker itself is only stopped
  } finally {
    process.kill(w.node.pid as number, 'SIGCONT');
  }
});

test('its worker killed (SIGKILL), the group is killed at once (end of file)', async () => {
  const w = await startWorker('feed');
  workers.push(w);
  process.kill(w.node.pid as number, 'SIGKILL');
  expect(await until(() => !alive(w.victim), WINDOW_MS)).toBe(true);
});

test('the window stays under the time Temporal needs to start a retry', () => {
  expect(deadManWindowMs(15_000, 1000)).toBe(7500);
  expect(deadManWindowMs(5000, 1000)).toBe(2000);
  expect(deadManWindowMs(2000, 1000)).toBe(1000);
  for (const [timeout, beat] of [
    [15_000, 2000],
    [10_000, 1000],
    [60_000, 5000],
  ] as const) {
    expect(deadManWindowMs(timeout, beat)).toBeLessThanOrEqual(timeout - 2 * beat - 1000);
  }
});

test('the executor feeds the switch of a running attempt and disarms it at the end', async () => {
  const executor = new ShellExecutor({
    path: '/usr/local/bin:/usr/bin:/bin',
    outputCapBytes: 1024,
    killGraceMs: 500,
    isolation: null,
    defaultLimits: SHELL_DEFAULT_LIMITS,
  });
  // Three windows long: a switch the worker did not feed would have killed it.
  const r = await executor.run({
    spec: { script: 'sleep 1.5; echo done' },
    timeoutSeconds: 10,
    heartbeatMs: 300,
    deadManWindowMs: 500,
  });
  expect(r).toMatchObject({ outcome: 'exited', exitCode: 0, signal: null });
  expect(r.stdout.text).toBe('done\n');
  // No watcher is left behind (this process's own only: other suites' workers may be running theirs).
  const ownWatchers = (): number =>
    spawnSync('pgrep', ['-P', String(process.pid), '-f', 'dead-man-switch'])
      .stdout.toString()
      .trim()
      .split('\n')
      .filter(Boolean).length;
  expect(await until(() => ownWatchers() === 0, 5_000)).toBe(true);
});
