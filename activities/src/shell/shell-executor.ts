import { spawn } from 'node:child_process';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CapturedStream, ShellSpec } from '@task-scheduler/contracts';
import { OutputCapture } from './output-capture';

export interface ShellExecutorOptions {
  /** PATH given to every task; the worker's own PATH is not passed through. */
  path: string;
  outputCapBytes: number;
  /** Time between SIGTERM and SIGKILL when a task is stopped. */
  killGraceMs: number;
  /** Run tasks as this user (needs a root worker); otherwise as the worker's own user. */
  runAs?: { uid: number; gid: number } | null;
  /** Path of `bwrap`, when installed: enables `sandbox: true` tasks. */
  bwrapPath?: string | null;
}

export interface ShellRunRequest {
  spec: ShellSpec;
  timeoutSeconds: number;
  /** Variables the product adds (run id, attempt); the task's own env wins over nothing but these. */
  extraEnv?: Record<string, string>;
  /** Aborting stops the process group (cancellation). */
  signal?: AbortSignal;
  /** Called every `heartbeatMs` while the process runs. */
  onHeartbeat?: (progress: { pid: number; stdoutBytes: number; stderrBytes: number }) => void;
  heartbeatMs?: number;
}

export type ShellOutcome = 'exited' | 'timed_out' | 'cancelled' | 'spawn_error' | 'sandbox_unavailable';

export interface ShellRunResult {
  outcome: ShellOutcome;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: CapturedStream;
  stderr: CapturedStream;
  durationMs: number;
  error: string | null;
}

/**
 * Runs one shell task in its own process group, in a fresh working directory
 * that is removed afterwards, with an environment built from scratch (PATH, a
 * UTF-8 locale, HOME and the task's own variables) so nothing of the worker's
 * environment — database URLs, keys — reaches the task. On timeout or abort
 * the whole group gets SIGTERM, then SIGKILL after a grace period; when the
 * leader exits, any process it left behind in the group is killed too.
 */
export class ShellExecutor {
  constructor(private readonly options: ShellExecutorOptions) {}

  async run(req: ShellRunRequest): Promise<ShellRunResult> {
    if (req.spec.sandbox && !this.options.bwrapPath) {
      return {
        outcome: 'sandbox_unavailable',
        exitCode: null,
        signal: null,
        stdout: { text: '', truncated: false, bytes: 0 },
        stderr: { text: '', truncated: false, bytes: 0 },
        durationMs: 0,
        error: 'the task asks for sandbox mode but this worker has no bwrap (bubblewrap) installed',
      };
    }
    if (req.spec.workingDirectory) return this.runIn(req.spec.workingDirectory, req);
    const workDir = await mkdtemp(join(tmpdir(), 'task-run-'));
    try {
      if (this.options.runAs) await chown(workDir, this.options.runAs.uid, this.options.runAs.gid);
      return await this.runIn(workDir, req);
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  }

  /**
   * bubblewrap: the whole filesystem read-only except the working directory
   * and a private /tmp, fresh PID/IPC/network namespaces (no network, and
   * /proc shows only the task's own processes), and the sandbox dies with
   * the worker even on `kill -9`.
   */
  private sandboxed(workDir: string, file: string, args: string[]): [string, string[]] {
    return [
      this.options.bwrapPath as string,
      [
        '--die-with-parent',
        '--unshare-all',
        '--ro-bind',
        '/',
        '/',
        '--dev',
        '/dev',
        '--proc',
        '/proc',
        '--tmpfs',
        '/tmp',
        '--bind',
        workDir,
        workDir,
        '--chdir',
        workDir,
        '--',
        file,
        ...args,
      ],
    ];
  }

  private runIn(workDir: string, req: ShellRunRequest): Promise<ShellRunResult> {
    const { spec } = req;
    const [command, commandArgs] = spec.script !== undefined ? ['/bin/sh', ['-c', spec.script]] : [spec.command as string, spec.args ?? []];
    const [file, args] = spec.sandbox ? this.sandboxed(workDir, command, commandArgs) : [command, commandArgs];
    const env: Record<string, string> = {
      PATH: this.options.path,
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      HOME: workDir,
      TMPDIR: workDir,
      ...(spec.env ?? {}),
      ...(req.extraEnv ?? {}),
    };
    const ids = this.options.runAs ? { uid: this.options.runAs.uid, gid: this.options.runAs.gid } : {};
    const stdout = new OutputCapture(this.options.outputCapBytes);
    const stderr = new OutputCapture(this.options.outputCapBytes);
    const started = Date.now();

    return new Promise<ShellRunResult>((resolve) => {
      let outcome: ShellOutcome = 'exited';
      let spawnError: string | null = null;
      let settled = false;
      let killTimer: NodeJS.Timeout | undefined;

      const child = spawn(file, args, { cwd: workDir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...ids });
      child.stdout.on('data', (c: Buffer) => stdout.push(c));
      child.stderr.on('data', (c: Buffer) => stderr.push(c));

      const killGroup = (sig: NodeJS.Signals): void => {
        if (child.pid === undefined) return;
        try {
          process.kill(-child.pid, sig);
        } catch {
          // ESRCH: the group is already gone.
        }
      };
      const stop = (why: ShellOutcome): void => {
        if (outcome !== 'exited') return;
        outcome = why;
        killGroup('SIGTERM');
        killTimer = setTimeout(() => killGroup('SIGKILL'), this.options.killGraceMs);
      };

      const timeout = setTimeout(() => stop('timed_out'), req.timeoutSeconds * 1000);
      const onAbort = (): void => stop('cancelled');
      if (req.signal?.aborted) onAbort();
      else req.signal?.addEventListener('abort', onAbort, { once: true });
      const heartbeat =
        req.onHeartbeat && child.pid !== undefined
          ? setInterval(
              () => req.onHeartbeat?.({ pid: child.pid as number, stdoutBytes: stdout.bytes, stderrBytes: stderr.bytes }),
              req.heartbeatMs ?? 2000,
            )
          : undefined;

      const finish = (exitCode: number | null, signal: NodeJS.Signals | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timeout);
        clearTimeout(killTimer);
        clearInterval(heartbeat);
        req.signal?.removeEventListener('abort', onAbort);
        // Background processes the task left behind share its group: end them with it.
        killGroup('SIGKILL');
        resolve({
          outcome: spawnError ? 'spawn_error' : outcome,
          exitCode,
          signal,
          stdout: stdout.result(),
          stderr: stderr.result(),
          durationMs: Date.now() - started,
          error: spawnError,
        });
      };

      child.on('error', (err) => {
        spawnError = `cannot start ${JSON.stringify(file)}: ${err.message}`;
        finish(null, null);
      });
      child.on('exit', (code, signal) => {
        // Output may still be buffered in the pipes; give them a moment to drain,
        // but do not wait on pipes that a left-behind process holds open.
        let drained = 0;
        const onClosed = (): void => {
          if (++drained === 2) finish(code, signal);
        };
        child.stdout.once('close', onClosed);
        child.stderr.once('close', onClosed);
        if (child.stdout.closed) onClosed();
        if (child.stderr.closed) onClosed();
        setTimeout(() => finish(code, signal), 200).unref();
      });
    });
  }
}
