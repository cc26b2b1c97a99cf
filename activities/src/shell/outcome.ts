import type { ShellLimitKey, ShellLimits } from '@task-scheduler/contracts';
import { SHELL_LIMIT_NAMES } from '@task-scheduler/contracts';

/** `outputs_invalid`: the command succeeded (or was ended for a growing file) but its `$TASK_OUTPUTS` cannot be taken. */
export type ShellOutcome = 'exited' | 'timed_out' | 'cancelled' | 'spawn_error' | 'resource_limit' | 'isolation_failed' | 'outputs_invalid';

export interface AttemptEnd {
  /** What stopped the attempt (`exited` when it ended by itself). */
  stoppedAs: ShellOutcome;
  /** The process could not be started, or the sandbox not set up. */
  failure: string | null;
  /** The limit crossed, if any. */
  crossed: ShellLimitKey | null;
  isolated: boolean;
  /** bwrap reported its sandbox (so the task's command was reached). */
  sandboxStarted: boolean;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  /** The program the task runs, for messages. */
  file: string;
  limits: Required<ShellLimits>;
}

function limitMessage(key: ShellLimitKey, limits: Required<ShellLimits>): string {
  const v = limits[key];
  const what: Record<ShellLimitKey, string> = {
    memoryMb: `its memory limit of ${v} MiB`,
    processes: `its limit of ${v} processes`,
    cpuSeconds: `its CPU time limit of ${v} s`,
    fileSizeMb: `its file size limit of ${v} MiB`,
    openFiles: `its limit of ${v} open files`,
    workdirMb: `its working directory limit of ${v} MiB`,
  };
  return `resource_limit: ${SHELL_LIMIT_NAMES[key]} (the attempt reached ${what[key]} and was ended)`;
}

/**
 * How an attempt ended, from what was observed: a setup failure wins, then a
 * command bwrap could not find (its `execvp` message, exit 1), then a crossed
 * limit — unless the attempt was timed out or cancelled first.
 */
export function classifyEnd(e: AttemptEnd): { outcome: ShellOutcome; error: string | null; resourceLimit: string | null } {
  let failure = e.failure;
  if (e.isolated && !e.sandboxStarted && !failure) {
    failure = `the sandbox could not be set up: ${e.stderr.trim() || `bwrap exited with ${e.exitCode ?? e.signal}`}`;
  }
  if (failure) return { outcome: e.isolated ? 'isolation_failed' : 'spawn_error', error: failure, resourceLimit: null };
  if (e.isolated && e.stoppedAs === 'exited' && e.exitCode === 1 && /^bwrap: execvp /m.test(e.stderr)) {
    return { outcome: 'spawn_error', error: `cannot start ${JSON.stringify(e.file)}: not found in the sandbox`, resourceLimit: null };
  }
  if (e.crossed && (e.stoppedAs === 'exited' || e.stoppedAs === 'resource_limit')) {
    return { outcome: 'resource_limit', error: limitMessage(e.crossed, e.limits), resourceLimit: SHELL_LIMIT_NAMES[e.crossed] };
  }
  return { outcome: e.stoppedAs, error: null, resourceLimit: null };
}
