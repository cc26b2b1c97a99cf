import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CapturedStream, RunOutputs, ShellLimitKey, ShellLimits, ShellSpec } from '@task-scheduler/contracts';
import { PIPELINE_LIMITS } from '@task-scheduler/contracts';
import { SANDBOX_OUTPUTS_FILE, isUsableWorkDir, resolveShellLimits } from '@task-scheduler/core';
import { OutputCapture } from './output-capture';
import { OutputsFile } from './outputs-file';
import { TaskOutputsError, maskOutputs, parseTaskOutputs } from './task-outputs';

export type { ShellOutcome } from './outcome';
import { sandboxArgs } from './sandbox/bwrap-args';
import type { RunCgroup } from './sandbox/cgroup';
import { LimitMonitor } from './sandbox/limit-monitor';
import { classifyEnd } from './outcome';
import { DeadManSwitch } from './dead-man-switch';
import type { ShellOutcome } from './outcome';
import { attachEgress } from './sandbox/egress';
import type { EgressLink } from './sandbox/egress';
import type { DefaultShellLimits, Isolation } from './sandbox/isolation';
import { processesOfUid } from './sandbox/uid-leases';
import type { UidLease } from './sandbox/uid-leases';

export interface ShellExecutorOptions {
  /** PATH given to every task; the worker's own PATH is not passed through. */
  path: string;
  outputCapBytes: number;
  /** Bytes of the end of each stream kept apart (`stdoutTail`, `stderrTail`), for Temporal history; 0: none. */
  tailBytes?: number;
  /** Time between SIGTERM and SIGKILL when a task is stopped. */
  killGraceMs: number;
  /** Isolated attempts (the default); null only with SHELL_ISOLATION=none. */
  isolation: Isolation | null;
  /** Limits of attempts whose input names none. */
  defaultLimits: DefaultShellLimits;
  /** SHELL_ISOLATION=none only: run tasks as this user (needs a root worker); otherwise as the worker's own user. */
  runAs?: { uid: number; gid: number } | null;
  /** How often an isolated attempt's cgroup counters and working directory are checked. */
  monitorMs?: number;
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
  /** Every chunk of output as it arrives (before capping and masking: the receiver does its own). */
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
  heartbeatMs?: number;
  /** The task's secret values: masked as `***` in its outputs. */
  secretValues?: readonly string[];
  /**
   * Arms a {@link DeadManSwitch} for the attempt: its processes are SIGKILLed by a separate process when
   * this worker has not fed it for this long (stopped, wedged) or died. Shorter than the activity's
   * heartbeat timeout (see `deadManWindowMs`), so a stalled attempt is gone before Temporal can start its retry.
   */
  deadManWindowMs?: number;
}

export interface ShellRunResult {
  outcome: ShellOutcome;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: CapturedStream;
  stderr: CapturedStream;
  /** Isolated attempts: from the start of their setup (uid, cgroup, sandbox, network) to the command's release. */
  setupMs?: number;
  /** The end of each stream (ShellExecutorOptions.tailBytes), when asked for. */
  stdoutTail?: CapturedStream;
  stderrTail?: CapturedStream;
  durationMs: number;
  error: string | null;
  /** How the attempt was isolated. */
  isolation: 'sandbox' | 'none';
  /** The limit the attempt crossed (`memory`, `processes`, `cpu`, `file_size`, `workdir_size`), if any. */
  resourceLimit: string | null;
  /** What a successful attempt wrote to `$TASK_OUTPUTS`, secrets masked; null when nothing (or it did not succeed). */
  outputs: RunOutputs | null;
}

const DEFAULT_WORKDIR = '/work';
const MiB = 1024 * 1024;
const OUTPUTS_CAP = PIPELINE_LIMITS.maxOutputBytes;
/** bwrap's own processes (its monitor outside, its init inside) count against the attempt's process limit. */
const BWRAP_PROCESSES = 2;

function emptyStream(): CapturedStream {
  return { text: '', truncated: false, bytes: 0 };
}

/** What an isolated attempt holds while it runs; released when it ends. */
interface SandboxResources {
  lease: UidLease;
  cgroup: RunCgroup | null;
  egress: EgressLink | null;
  /** The sandbox's init, as bwrap reported it: killing it ends every process of the attempt. */
  sandboxPid: number | null;
}

/**
 * Runs one shell task. Isolated (the default): under bubblewrap, as a uid no
 * other attempt holds, in fresh namespaces with a private /tmp and working
 * directory, no network unless the task asked for egress (then through
 * slirp4netns behind an nftables filter), limits from cgroups and rlimits, and
 * an environment built from scratch (PATH, a UTF-8 locale, HOME and the task's
 * own variables) so nothing of the worker's — database URLs, keys — reaches
 * it. The PID namespace ends with its first process, so nothing the task
 * started outlives the attempt, whatever it did (setsid, double fork), and the
 * sandbox dies with the worker. With SHELL_ISOLATION=none the task runs in its
 * own process group in a fresh directory, as SHELL_RUN_AS.
 */
export class ShellExecutor {
  constructor(private readonly options: ShellExecutorOptions) {}

  async run(req: ShellRunRequest): Promise<ShellRunResult> {
    if (this.options.isolation) return this.runIsolated(this.options.isolation, req);
    const outputs = await OutputsFile.create(null, this.options.runAs ?? null);
    try {
      return this.takeOutputs(await this.runPlain(req, outputs), req, outputs);
    } finally {
      await outputs.remove();
    }
  }

  private async runPlain(req: ShellRunRequest, outputs: OutputsFile): Promise<ShellRunResult> {
    if (req.spec.workingDirectory) return this.supervise(this.spawnPlain(req.spec.workingDirectory, req, outputs), req, null, outputs);
    const workDir = await mkdtemp(join(tmpdir(), 'task-run-'));
    try {
      if (this.options.runAs) await chown(workDir, this.options.runAs.uid, this.options.runAs.gid);
      return await this.supervise(this.spawnPlain(workDir, req, outputs), req, null, outputs);
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  }

  /**
   * Reads `$TASK_OUTPUTS` of an attempt that succeeded (an exit code in
   * `allowedExitCodes`); a failed attempt's file is ignored, whatever it holds.
   */
  private takeOutputs(r: ShellRunResult, req: ShellRunRequest, outputs: OutputsFile): ShellRunResult {
    const allowed = req.spec.allowedExitCodes ?? [0];
    if (r.outcome !== 'exited' || r.exitCode === null || !allowed.includes(r.exitCode)) return r;
    try {
      const parsed = parseTaskOutputs(outputs.read(OUTPUTS_CAP) ?? Buffer.alloc(0), OUTPUTS_CAP);
      return { ...r, outputs: parsed && maskOutputs(parsed, req.secretValues ?? []) };
    } catch (err) {
      if (!(err instanceof TaskOutputsError)) throw err;
      return { ...r, outcome: 'outputs_invalid', error: err.message };
    }
  }

  private command(spec: ShellSpec): [string, string[]] {
    return spec.script !== undefined ? ['/bin/sh', ['-c', spec.script]] : [spec.command as string, spec.args ?? []];
  }

  private env(req: ShellRunRequest, workDir: string, tmp: string, outputsPath: string): Record<string, string> {
    return {
      PATH: this.options.path,
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      HOME: workDir,
      TMPDIR: tmp,
      ...(req.spec.env ?? {}),
      ...(req.extraEnv ?? {}),
      TASK_OUTPUTS: outputsPath,
    };
  }

  private spawnPlain(workDir: string, req: ShellRunRequest, outputs: OutputsFile): ChildProcess {
    const [file, args] = this.command(req.spec);
    const ids = this.options.runAs ? { uid: this.options.runAs.uid, gid: this.options.runAs.gid } : {};
    return spawn(file, args, {
      cwd: workDir,
      env: this.env(req, workDir, workDir, outputs.path),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...ids,
    });
  }

  private async runIsolated(iso: Isolation, req: ShellRunRequest): Promise<ShellRunResult> {
    const setupStart = Date.now();
    const limits = resolveShellLimits(req.spec.limits, undefined, this.options.defaultLimits);
    const workDir = req.spec.workingDirectory ?? DEFAULT_WORKDIR;
    // Checked here too: a stored spec may predate the API's rule.
    if (!isUsableWorkDir(workDir)) return this.failedSetup(`working directory ${JSON.stringify(workDir)} cannot be used in the sandbox`);
    const network = req.spec.network ?? 'none';
    let lease: UidLease;
    try {
      lease = iso.uids.acquire();
    } catch (err) {
      return this.failedSetup((err as Error).message);
    }
    const res: SandboxResources = { lease, cgroup: null, egress: null, sandboxPid: null };
    try {
      res.cgroup =
        iso.cgroups?.create(`attempt-${randomBytes(6).toString('hex')}`, {
          memoryBytes: limits.memoryMb * MiB,
          pids: limits.processes + BWRAP_PROCESSES,
        }) ?? null;
    } catch (err) {
      this.release(res);
      return this.failedSetup(`cannot create the attempt's cgroup: ${(err as Error).message}`);
    }
    let outputs: OutputsFile;
    try {
      outputs = await OutputsFile.create(iso.outputsDir, { uid: lease.uid, gid: lease.uid });
    } catch (err) {
      this.release(res);
      return this.failedSetup(`cannot create the attempt's outputs file: ${(err as Error).message}`);
    }
    try {
      return this.takeOutputs(await this.startIsolated(iso, req, res, limits, workDir, network, outputs, setupStart), req, outputs);
    } finally {
      await outputs.remove();
    }
  }

  private startIsolated(
    iso: Isolation,
    req: ShellRunRequest,
    res: SandboxResources,
    limits: Required<ShellLimits>,
    workDir: string,
    network: string,
    outputs: OutputsFile,
    setupStart: number,
  ): Promise<ShellRunResult> {
    const [file, args] = this.command(req.spec);
    const rlimits = [
      `--cpu=${limits.cpuSeconds}:${limits.cpuSeconds + 1}`,
      `--fsize=${limits.fileSizeMb * MiB}`,
      `--nofile=${limits.openFiles}`,
      // With a pids cgroup, that is the bound (and counts refusals); RLIMIT_NPROC is the bound without one.
      `--nproc=${res.cgroup ? 2 * limits.processes + 64 : limits.processes + BWRAP_PROCESSES}`,
      // Without a memory cgroup, a per-process address-space limit is the only memory bound.
      ...(res.cgroup ? [] : [`--as=${limits.memoryMb * MiB}`]),
    ];
    const bwrap = sandboxArgs({
      hostRoot: iso.hostRoot,
      etcDir: iso.etcDir,
      workDir,
      tmpfsBytes: limits.workdirMb * MiB,
      outputsFile: outputs.path,
      infoFd: 3,
      blockFd: 4,
    });
    // The task's environment goes to bwrap through fd 5 (--args), never through prlimit's or bwrap's own
    // environment (LD_PRELOAD would act outside the sandbox) nor their argv (world-readable in /proc).
    const envArgs = [
      '--clearenv',
      ...Object.entries(this.env(req, workDir, '/tmp', SANDBOX_OUTPUTS_FILE)).flatMap(([k, v]) => ['--setenv', k, v]),
    ];
    const child = spawn(iso.prlimit, [...rlimits, '--', iso.bwrap, '--args', '5', ...bwrap, '--', file, ...args], {
      cwd: '/',
      env: {},
      detached: true,
      uid: res.lease.uid,
      gid: res.lease.uid,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe'],
    });
    (child.stdio as unknown as (NodeJS.WritableStream | null)[])[5]?.end(Buffer.from(envArgs.map((a) => `${a}\0`).join(''), 'utf8'));
    return this.supervise(child, req, { iso, res, limits, workDir, network, setupStart }, outputs);
  }

  private failedSetup(error: string): ShellRunResult {
    return {
      outcome: 'isolation_failed',
      exitCode: null,
      signal: null,
      stdout: emptyStream(),
      stderr: emptyStream(),
      durationMs: 0,
      error,
      isolation: 'sandbox',
      resourceLimit: null,
      outputs: null,
    };
  }

  /** Frees what an isolated attempt held, once none of its processes is left. */
  private release(res: SandboxResources): void {
    res.egress?.close();
    void (async () => {
      // The cgroup knows the attempt's processes; without one, a scan of /proc for its uid does.
      const left = (): number => (res.cgroup ? res.cgroup.pids().length : processesOfUid(res.lease.uid).length);
      // Bounded: the namespace's processes are SIGKILLed with its init; give the kernel up to 2 s.
      for (let i = 0; i < 40 && left() > 0; i++) await new Promise((r) => setTimeout(r, 50));
      const empty = left() === 0;
      await res.cgroup?.remove();
      if (empty) res.lease.release();
      // else: the uid stays leased, so no later attempt can share it with a leftover.
    })();
  }

  private supervise(
    child: ChildProcess,
    req: ShellRunRequest,
    sandbox: {
      iso: Isolation;
      res: SandboxResources;
      limits: Required<ShellLimits>;
      workDir: string;
      network: string;
      /** When the attempt's isolation began to be set up (uid lease, cgroup, outputs file, sandbox, network). */
      setupStart: number;
    } | null,
    outputs: OutputsFile,
  ): Promise<ShellRunResult> {
    const stdout = new OutputCapture(this.options.outputCapBytes, this.options.tailBytes ?? 0);
    const stderr = new OutputCapture(this.options.outputCapBytes, this.options.tailBytes ?? 0);
    const started = Date.now();
    const [file] = this.command(req.spec);

    return new Promise<ShellRunResult>((resolve) => {
      let outcome: ShellOutcome = 'exited';
      let failure: string | null = null;
      let crossed: ShellLimitKey | null = null;
      let outputsError: string | null = null;
      let settled = false;
      let released = false;
      let killTimer: NodeJS.Timeout | undefined;
      let monitor: NodeJS.Timeout | undefined;
      let setupMs: number | undefined;
      let deadMan: DeadManSwitch | null = null;

      child.stdout?.on('data', (c: Buffer) => {
        stdout.push(c);
        req.onOutput?.('stdout', c);
      });
      child.stderr?.on('data', (c: Buffer) => {
        stderr.push(c);
        req.onOutput?.('stderr', c);
      });

      const killAll = (sig: NodeJS.Signals): void => {
        const kill = (pid: number): void => {
          try {
            process.kill(pid, sig);
          } catch {
            // ESRCH: already gone.
          }
        };
        // Unisolated, the group outlives its leader (background processes): it is always signalled.
        const group = (): void => {
          if (child.pid !== undefined) kill(-child.pid);
        };
        const init = sandbox?.res.sandboxPid;
        if (!init) return group();
        // The sandbox's init first: bwrap's monitor outside then reaps it and exits. Killed together, the
        // init would be left a zombie of PID 1; the monitor is killed only if it is still there later.
        kill(init);
        setTimeout(() => {
          if (child.exitCode === null && child.signalCode === null) group();
        }, 500).unref();
      };
      /** SIGTERM to the task's own processes (not bwrap's), so it may clean up before the SIGKILL. */
      const termTask = (): void => {
        if (!sandbox) return killAll('SIGTERM');
        const skip = new Set([child.pid, sandbox.res.sandboxPid]);
        const pids = sandbox.res.cgroup ? sandbox.res.cgroup.pids() : processesOfUid(sandbox.res.lease.uid);
        for (const pid of pids) {
          if (skip.has(pid)) continue;
          try {
            process.kill(pid, 'SIGTERM');
          } catch {
            // gone
          }
        }
      };
      const stop = (why: ShellOutcome, graceful = true): void => {
        if (outcome !== 'exited' || settled) return;
        outcome = why;
        if (!graceful) return killAll('SIGKILL');
        termTask();
        killTimer = setTimeout(() => killAll('SIGKILL'), this.options.killGraceMs);
      };

      const timeout = setTimeout(() => stop('timed_out'), req.timeoutSeconds * 1000);
      const onAbort = (): void => stop('cancelled');
      const heartbeat =
        req.onHeartbeat && child.pid !== undefined
          ? setInterval(
              () => req.onHeartbeat?.({ pid: child.pid as number, stdoutBytes: stdout.bytes, stderrBytes: stderr.bytes }),
              req.heartbeatMs ?? 2000,
            )
          : undefined;

      const limits = sandbox ? new LimitMonitor(sandbox.res.cgroup, sandbox.limits, sandbox.workDir) : null;
      const checkLimits = (): void => {
        if (settled || outcome !== 'exited') return;
        // The file is on the host's disk: a task filling it is ended now, not at its RLIMIT_FSIZE.
        const written = outputs.size();
        if (written > OUTPUTS_CAP) {
          outputsError = `outputs: $TASK_OUTPUTS grew to ${written.toLocaleString('en-US')} bytes; at most ${OUTPUTS_CAP.toLocaleString('en-US')} are taken, so the attempt was ended`;
          return stop('outputs_invalid', false);
        }
        if (!limits) return;
        const key = limits.crossed();
        if (key) {
          crossed = key;
          stop('resource_limit', false);
        }
      };

      const finish = (exitCode: number | null, signal: NodeJS.Signals | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timeout);
        clearTimeout(killTimer);
        clearInterval(heartbeat);
        clearInterval(monitor);
        deadMan?.disarm();
        req.signal?.removeEventListener('abort', onAbort);
        if (limits && outcome === 'exited' && !crossed) crossed = limits.final(exitCode);
        limits?.close();
        // Background processes the task left behind: its group (unisolated) or its namespace end with it.
        killAll('SIGKILL');
        if (sandbox && !released) {
          released = true;
          this.release(sandbox.res);
        }
        const end = classifyEnd({
          stoppedAs: outcome,
          failure,
          crossed,
          isolated: sandbox !== null,
          sandboxStarted: Boolean(sandbox?.res.sandboxPid),
          exitCode,
          signal,
          stderr: stderr.result().text,
          file,
          limits: sandbox?.limits ?? this.options.defaultLimits,
        });
        resolve({
          outcome: end.outcome,
          exitCode,
          signal,
          stdout: stdout.result(),
          stderr: stderr.result(),
          ...(this.options.tailBytes ? { stdoutTail: stdout.tailResult(), stderrTail: stderr.tailResult() } : {}),
          ...(setupMs !== undefined ? { setupMs } : {}),
          durationMs: Date.now() - started,
          error: end.outcome === 'outputs_invalid' ? outputsError : end.error,
          isolation: sandbox ? 'sandbox' : 'none',
          resourceLimit: end.resourceLimit,
          outputs: null,
        });
      };

      child.on('error', (err) => {
        failure = `cannot start ${JSON.stringify(sandbox ? sandbox.iso.prlimit : file)}: ${err.message}`;
        finish(null, null);
      });
      child.on('exit', (code, signal) => {
        // Output may still be buffered in the pipes; give them a moment to drain,
        // but do not wait on pipes that a left-behind process holds open.
        let drained = 0;
        const onClosed = (): void => {
          if (++drained === 2) finish(code, signal);
        };
        child.stdout?.once('close', onClosed);
        child.stderr?.once('close', onClosed);
        if (child.stdout?.closed) onClosed();
        if (child.stderr?.closed) onClosed();
        setTimeout(() => finish(code, signal), 200).unref();
      });

      /**
       * Arms the switch on the attempt's processes: isolated, before the task's first instruction (bwrap waits
       * on its block fd); unisolated, just after the spawn. Isolated, the sandbox's init (its PID namespace ends with it) and bwrap's group;
       * unisolated, the task's group. The group's id cannot be reused while the switch is armed: its leader
       * stays this worker's unreaped child until the exit this worker handles, and `finish` disarms before
       * anything else can be reaped. The init is reaped by bwrap: the switch kills it only while bwrap is still
       * its parent, so a pid freed during a stall and given to another process is left alone.
       */
      const armDeadMan = (): Promise<void> => {
        const windowMs = req.deadManWindowMs;
        if (!windowMs || child.pid === undefined) return Promise.resolve();
        const init = sandbox?.res.sandboxPid;
        const bwrap = child.pid;
        return DeadManSwitch.arm(
          { children: init ? [{ pid: init, parent: bwrap }] : [], groups: [bwrap] },
          {
            windowMs,
            feedMs: Math.max(50, Math.min((req.heartbeatMs ?? 2000) / 3, windowMs / 4)),
            onLost: () => {
              if (settled) return;
              failure ??= "the attempt's dead man's switch ended while the attempt ran";
              killAll('SIGKILL');
            },
          },
        ).then(
          (s) => {
            if (settled) s.disarm();
            else deadMan = s;
          },
          (err: Error) => {
            if (settled) return;
            failure = `cannot start the attempt's dead man's switch: ${err.message}`;
            killAll('SIGKILL');
          },
        );
      };

      const begin = (): void => {
        if (req.signal?.aborted) onAbort();
        else req.signal?.addEventListener('abort', onAbort, { once: true });
        monitor = setInterval(checkLimits, this.options.monitorMs ?? 200);
        if (sandbox) setTimeout(checkLimits, 15).unref();
      };
      if (!sandbox) {
        void armDeadMan();
        return begin();
      }

      // bwrap reports its sandbox's pid on fd 3 and waits on fd 4: the attempt joins its cgroup
      // (and gets its network) before the task's first instruction.
      let info = '';
      const infoStream = child.stdio[3] as NodeJS.ReadableStream;
      const onInfo = (c: Buffer): void => {
        info += c.toString();
        const m = /"child-pid"\s*:\s*(\d+)/.exec(info);
        if (!m) return;
        infoStream.removeListener('data', onInfo);
        const pid = Number(m[1]);
        sandbox.res.sandboxPid = pid;
        if (limits) limits.sandboxPid = pid;
        void (async () => {
          try {
            if (sandbox.res.cgroup && child.pid !== undefined) {
              sandbox.res.cgroup.add(child.pid);
              sandbox.res.cgroup.add(pid);
            }
            if (sandbox.network === 'egress') {
              const link = await attachEgress(sandbox.iso.egressTools, pid, sandbox.iso.egressRules);
              // The attempt may have ended (timeout, cancel) while the link came up: then nobody else closes it.
              if (settled) return link.close();
              sandbox.res.egress = link;
              // slirp's work for this sandbox is charged to the attempt.
              if (link.pid !== undefined) sandbox.res.cgroup?.add(link.pid);
            }
          } catch (err) {
            if (settled) return;
            failure = `cannot set up the attempt's sandbox: ${(err as Error).message}`;
            killAll('SIGKILL');
            return;
          }
          if (settled) return;
          await armDeadMan();
          if (settled || failure) return;
          setupMs = Date.now() - sandbox.setupStart;
          (child.stdio[4] as NodeJS.WritableStream).write('1');
          begin();
        })();
      };
      infoStream.on('data', onInfo);
    });
  }
}
