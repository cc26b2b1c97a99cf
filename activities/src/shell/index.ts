import { ApplicationFailure, Context } from '@temporalio/activity';
import type { ShellActivityInput, ShellActivityResult, ShellFailureDetails } from '@task-scheduler/contracts';
import { SHELL_FAILURE_TYPES } from '@task-scheduler/contracts';
import type { RunRecorder } from '../runs/run-recorder';
import { ShellExecutor } from './shell-executor';
import type { ShellExecutorOptions, ShellRunResult } from './shell-executor';

export { ShellExecutor } from './shell-executor';
export type { ShellExecutorOptions, ShellRunRequest, ShellRunResult } from './shell-executor';
export { OutputCapture } from './output-capture';

export interface ShellActivityDeps {
  recorder: RunRecorder;
  executor: ShellExecutorOptions;
  workerIdentity: string;
  heartbeatMs: number;
}

function failureMessage(r: ShellRunResult, timeoutSeconds: number): string {
  switch (r.outcome) {
    case 'timed_out':
      return `command exceeded its timeout of ${timeoutSeconds}s and was killed`;
    case 'cancelled':
      return 'run was cancelled; the process group was killed';
    case 'spawn_error':
      return r.error ?? 'command could not be started';
    case 'exited':
      return r.signal ? `command was killed by ${r.signal}` : `command exited with code ${r.exitCode}`;
  }
}

/**
 * Shell executor activities, hosted by workers of the `shell` task queue.
 * Each attempt is recorded (start, end, output) by the worker that runs it.
 */
export function createShellActivities(deps: ShellActivityDeps) {
  const executor = new ShellExecutor(deps.executor);
  return {
    async runShellCommand(input: ShellActivityInput): Promise<ShellActivityResult> {
      const ctx = Context.current();
      const attempt = ctx.info.attempt;
      await deps.recorder.startAttempt({
        runId: input.runId,
        tenantId: input.tenantId,
        attempt,
        workerIdentity: deps.workerIdentity,
      });
      const result = await executor.run({
        spec: input.shell,
        timeoutSeconds: input.timeoutSeconds,
        extraEnv: { TASK_RUN_ID: input.runId, TASK_ATTEMPT: String(attempt) },
        signal: ctx.cancellationSignal,
        heartbeatMs: deps.heartbeatMs,
        onHeartbeat: (progress) => ctx.heartbeat(progress),
      });
      const allowed = input.shell.allowedExitCodes ?? [0];
      const ok = result.outcome === 'exited' && result.exitCode !== null && allowed.includes(result.exitCode);
      const error = ok ? null : failureMessage(result, input.timeoutSeconds);
      await deps.recorder.finishAttempt({
        runId: input.runId,
        attempt,
        status: ok ? 'succeeded' : result.outcome === 'timed_out' ? 'timed_out' : result.outcome === 'cancelled' ? 'cancelled' : 'failed',
        exitCode: result.exitCode,
        error,
        stdout: result.stdout,
        stderr: result.stderr,
      });
      if (ok) {
        return { exitCode: result.exitCode as number, stdout: result.stdout, stderr: result.stderr, durationMs: result.durationMs };
      }
      if (result.outcome === 'cancelled') {
        // Surfaces as the cancellation Temporal delivered, so the workflow sees a CancelledFailure.
        ctx.cancellationSignal.throwIfAborted();
      }
      const details: ShellFailureDetails = { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr };
      const nonRetryable =
        result.outcome === 'spawn_error' || (result.exitCode !== null && input.nonRetryableExitCodes.includes(result.exitCode));
      const type =
        result.outcome === 'timed_out'
          ? SHELL_FAILURE_TYPES.timeout
          : result.outcome === 'spawn_error'
            ? SHELL_FAILURE_TYPES.spawn
            : nonRetryable
              ? SHELL_FAILURE_TYPES.nonRetryableExitCode
              : SHELL_FAILURE_TYPES.exitCode;
      throw ApplicationFailure.create({ message: error as string, type, nonRetryable, details: [details] });
    },
  };
}

export type ShellActivities = ReturnType<typeof createShellActivities>;
