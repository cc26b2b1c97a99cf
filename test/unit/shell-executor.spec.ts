/* The executor unisolated (SHELL_ISOLATION=none) runs real processes; no mocks. Isolated attempts are
 * tested against the real stack in test/e2e/shell-isolation.e2e.spec.ts; their outputs file is tested here
 * with a real sandbox (bwrap, as root), prepared by the worker's own prepareIsolation. */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ShellExecutor, prepareIsolation } from '@task-scheduler/activities';
import type { Isolation, ShellRunRequest, ShellRunResult } from '@task-scheduler/activities';
import { SHELL_DEFAULT_LIMITS } from '@task-scheduler/core';
import { removeStaleOutputs } from '../../activities/src/shell/outputs-file';
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
  expect(names).toEqual(['A', 'HOME', 'LANG', 'LC_ALL', 'PATH', 'TASK_OUTPUTS', 'TASK_RUN_ID', 'TMPDIR']);
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

const script = (text: string, extra: Partial<ShellRunRequest> = {}): Promise<ShellRunResult> =>
  executor.run({ spec: { script: text }, timeoutSeconds: 10, ...extra });

describe('outputs, unisolated', () => {
  test('name=value lines and a JSON object are read after a successful exit; the directory is removed', async () => {
    const r = await script('printf "# counted\\nrows=3\\npath=/data/x y.csv\\n" >> "$TASK_OUTPUTS"; echo "$TASK_OUTPUTS"');
    expect(r).toMatchObject({ outcome: 'exited', exitCode: 0, error: null, outputs: { rows: '3', path: '/data/x y.csv' } });
    const file = r.stdout.text.trim();
    expect(file).toMatch(/task-outputs-.+\/outputs$/);
    expect(existsSync(dirname(file))).toBe(false);
    const json = await script(`echo '{"rows": 3, "files": ["a", "b"], "meta": {"ok": true}}' > "$TASK_OUTPUTS"`);
    expect(json.outputs).toEqual({ rows: 3, files: ['a', 'b'], meta: { ok: true } });
  });

  test('no outputs written is null; the task cannot point TASK_OUTPUTS elsewhere', async () => {
    const r = await executor.run({ spec: { script: 'echo "$TASK_OUTPUTS"', env: { TASK_OUTPUTS: '/etc/passwd' } }, timeoutSeconds: 10 });
    expect(r.outputs).toBeNull();
    expect(r.stdout.text).toMatch(/task-outputs-.+\/outputs\n$/);
  });

  test('over the cap, or a malformed line, fails the attempt as outputs_invalid with a clear message', async () => {
    const big = await script('head -c 70000 /dev/zero | tr "\\0" a > "$TASK_OUTPUTS"');
    expect(big).toMatchObject({ outcome: 'outputs_invalid', exitCode: 0, outputs: null });
    expect(big.error).toMatch(/^outputs: \$TASK_OUTPUTS (is 70,000 bytes|grew to [\d,]+ bytes); at most 65,536 are taken/);
    const bad = await script('printf "a=1\\nnot a pair\\n" > "$TASK_OUTPUTS"');
    expect(bad).toMatchObject({ outcome: 'outputs_invalid', exitCode: 0, outputs: null });
    expect(bad.error).toMatch(/^outputs: line 2 is not name=value/);
  });

  test('a file that keeps growing ends the attempt at once, not at its file size limit', async () => {
    const r = await script('while :; do echo aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; done >> "$TASK_OUTPUTS"', { timeoutSeconds: 30 });
    expect(r.outcome).toBe('outputs_invalid');
    expect(r.error).toMatch(/^outputs: \$TASK_OUTPUTS grew to [\d,]+ bytes; at most 65,536 are taken, so the attempt was ended$/);
    expect(r.durationMs).toBeLessThan(10_000);
  });

  test('a symlink to /etc/passwd in place of the file is refused, not followed', async () => {
    const r = await script('ln -sf /etc/passwd "$TASK_OUTPUTS"');
    expect(r).toMatchObject({ outcome: 'outputs_invalid', outputs: null });
    expect(r.error).toBe('outputs: $TASK_OUTPUTS is a symbolic link; write the outputs into the file itself');
    const fifo = await script('rm "$TASK_OUTPUTS" && mkfifo "$TASK_OUTPUTS"');
    expect(fifo.error).toBe('outputs: $TASK_OUTPUTS is not a regular file');
  });

  test('a failed attempt ignores its outputs, even malformed ones; an allowed exit code takes them', async () => {
    const failed = await script('printf "rows=3\\nnot a pair\\n" > "$TASK_OUTPUTS"; exit 3');
    expect(failed).toMatchObject({ outcome: 'exited', exitCode: 3, error: null, outputs: null });
    const allowed = await executor.run({
      spec: { script: 'echo rows=3 > "$TASK_OUTPUTS"; exit 3', allowedExitCodes: [0, 3] },
      timeoutSeconds: 10,
    });
    expect(allowed.outputs).toEqual({ rows: '3' });
  });

  test('secret values are masked in outputs', async () => {
    const r = await script('echo "url=https://x/?token=s3cr3t-token&pin=abc" > "$TASK_OUTPUTS"', { secretValues: ['s3cr3t-token', 'abc'] });
    expect(r.outputs).toEqual({ url: 'https://x/?token=***&pin=abc' });
  });

  test('the outputs directory is removed after a cancel too', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const r = await script('echo "$TASK_OUTPUTS"; echo a=1 > "$TASK_OUTPUTS"; sleep 30', { timeoutSeconds: 30, signal: controller.signal });
    expect(r).toMatchObject({ outcome: 'cancelled', outputs: null });
    expect(existsSync(dirname(r.stdout.text.trim()))).toBe(false);
  });
});

test("outputs directories of a dead worker are removed once older than any attempt; a live worker's are kept", () => {
  const base = mkdtempSync(join(tmpdir(), 'outputs-base-'));
  // Above the kernel's default pid_max (4,194,304 at most): no process has it.
  const dead = 4_194_305;
  const old = new Date(Date.now() - 26 * 3600 * 1000);
  for (const [name, age] of [
    [`${dead}-aa`, old],
    [`${dead}-bb`, new Date()],
    [`${process.pid}-cc`, old],
    ['other', old],
  ] as const) {
    mkdirSync(join(base, name));
    utimesSync(join(base, name), age, age);
  }
  removeStaleOutputs(base);
  expect(readdirSync(base).sort()).toEqual([`${dead}-bb`, `${process.pid}-cc`, 'other'].sort());
  rmSync(base, { recursive: true, force: true });
});

describe('outputs, isolated (bwrap)', () => {
  // A uid range of its own, so these sandboxes never share a uid with a worker of another test on this host.
  const uidRange: [number, number] = [380000, 380999];
  let stateDir: string;
  let iso: Isolation;
  let sandboxed: ShellExecutor;

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'outputs-state-'));
    ({ isolation: iso } = await prepareIsolation({
      stateDir,
      uidRange,
      allowCidrs: [],
      cgroupsRequired: false,
      defaultLimits: SHELL_DEFAULT_LIMITS,
    }));
    sandboxed = new ShellExecutor({
      path: '/usr/bin:/bin',
      outputCapBytes: 4096,
      killGraceMs: 500,
      isolation: iso,
      defaultLimits: SHELL_DEFAULT_LIMITS,
    });
  });
  afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

  const run = (text: string, extra: Partial<ShellRunRequest> = {}) =>
    sandboxed.run({ spec: { script: text }, timeoutSeconds: 20, ...extra });

  test('the task writes its outputs file in the sandbox; the worker reads it and removes its directory', async () => {
    const r = await run('echo "$TASK_OUTPUTS"; echo rows=3 >> "$TASK_OUTPUTS"; echo \'{"x":1}\' > /dev/null');
    expect(r).toMatchObject({ outcome: 'exited', exitCode: 0, isolation: 'sandbox', outputs: { rows: '3' } });
    expect(r.stdout.text).toBe('/run/task-outputs/outputs\n');
    expect(readdirSync(iso.outputsDir)).toEqual([]);
    const json = await run(`printf '{"files": ["a"], "n": 2}' > "$TASK_OUTPUTS"`);
    expect(json.outputs).toEqual({ files: ['a'], n: 2 });
  });

  test('only the file is writable: no other file, no symlink in its place (so /etc/passwd is never read as outputs)', async () => {
    const r = await run(
      'ln -sf /etc/passwd "$TASK_OUTPUTS" 2>/dev/null && echo linked; touch /run/task-outputs/more 2>/dev/null && echo created; echo a=moved > /tmp/x; mv /tmp/x "$TASK_OUTPUTS" 2>/dev/null && echo moved; exit 0',
    );
    expect(r).toMatchObject({ outcome: 'exited', exitCode: 0, outputs: null });
    expect(r.stdout.text).toBe('');
  });

  test('over the cap, malformed, failed and masked, as unisolated', async () => {
    const big = await run('head -c 70000 /dev/zero | tr "\\0" a > "$TASK_OUTPUTS"');
    expect(big.outcome).toBe('outputs_invalid');
    expect(big.error).toMatch(/at most 65,536 are taken/);
    const bad = await run('echo "- not a pair" > "$TASK_OUTPUTS"');
    expect(bad).toMatchObject({ outcome: 'outputs_invalid', error: expect.stringMatching(/^outputs: line 1 is not name=value/) });
    const failed = await run('echo "- not a pair" > "$TASK_OUTPUTS"; exit 1');
    expect(failed).toMatchObject({ outcome: 'exited', exitCode: 1, outputs: null });
    const masked = await run('echo "t=a s3cr3t-token b" > "$TASK_OUTPUTS"', { secretValues: ['s3cr3t-token'] });
    expect(masked.outputs).toEqual({ t: 'a *** b' });
    expect(readdirSync(iso.outputsDir)).toEqual([]);
  });

  test("a task cannot read another attempt's outputs: not in its sandbox, and mode 0700 of the other uid on the host", async () => {
    const first = run('echo token=first-attempt-value > "$TASK_OUTPUTS"; id -u; sleep 3');
    // Bounded wait for the first attempt's directory to appear (it is made before its sandbox starts).
    let dirs: string[] = [];
    for (let i = 0; i < 50 && dirs.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      dirs = readdirSync(iso.outputsDir);
    }
    expect(dirs).toHaveLength(1);
    const dir = join(iso.outputsDir, dirs[0]);
    const st = lstatSync(dir);
    expect(st.mode & 0o777).toBe(0o700);
    expect(st.uid).toBeGreaterThanOrEqual(uidRange[0]);
    // Another attempt, in its sandbox: the host path does not exist there.
    const second = await run(`cat ${dir}/outputs; ls ${iso.outputsDir}; cat /run/task-outputs/outputs; id -u`);
    expect(second.stdout.text).not.toContain('first-attempt-value');
    expect(second.stderr.text).toContain('No such file or directory');
    // On the host, as any other uid of the range: refused by the directory's mode.
    const other = st.uid === uidRange[1] ? uidRange[0] : st.uid + 1;
    const asOther = spawnSync('/bin/cat', [join(dir, 'outputs')], { uid: other, gid: other, encoding: 'utf8' });
    expect(asOther.status).not.toBe(0);
    expect(asOther.stdout).not.toContain('first-attempt-value');
    const r = await first;
    expect(r.outputs).toEqual({ token: 'first-attempt-value' });
    expect(Number(r.stdout.text.trim())).toBe(st.uid);
    expect(Number(second.stdout.text.trim())).not.toBe(st.uid);
    expect(existsSync(dir)).toBe(false);
  });
});
