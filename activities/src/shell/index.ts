import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { ApplicationFailure } from '@temporalio/activity';
import type { ExecutorFailureDetails, ShellActivityInput, ShellActivityResult } from '@task-scheduler/contracts';
import { NON_RETRYABLE_FAILURE_TYPES, SHELL_FAILURE_TYPES } from '@task-scheduler/contracts';
import { maskSecrets, secretValuesOf } from '@task-scheduler/core';
import { attemptStatusOf, inRecordedAttempt, maskStream, maskTail, tailOf, unsealTaskSecrets } from '../executor-support';
import type { ExecutorActivityDeps } from '../executor-support';
import { traceparentEntry } from '../trace-context';
import { ShellExecutor } from './shell-executor';
import { deadManWindowMs } from './dead-man-switch';
import type { ShellExecutorOptions, ShellRunResult } from './shell-executor';

export { ShellExecutor } from './shell-executor';
export type { ShellExecutorOptions, ShellRunRequest, ShellRunResult } from './shell-executor';
export { OutputCapture } from './output-capture';
export { DeadManSwitch, deadManWindowMs } from './dead-man-switch';
export type { DeadManSwitchOptions, DeadManTargets } from './dead-man-switch';
export { MIN_MASKED_SECRET_LENGTH, TaskOutputsError, maskOutputs, outputsJsonBytes, parseTaskOutputs } from './task-outputs';
export * from './sandbox';
export { classifyEnd } from './outcome';

export interface ShellActivityDeps extends ExecutorActivityDeps {
  executor: ShellExecutorOptions;
}

function failureMessage(r: ShellRunResult, timeoutSeconds: number): string {
  switch (r.outcome) {
    case 'timed_out':
      return `command exceeded its timeout of ${timeoutSeconds}s and was killed`;
    case 'cancelled':
      return 'run was cancelled; its processes were killed';
    case 'spawn_error':
    case 'isolation_failed':
    case 'resource_limit':
      return r.error ?? 'command could not be started';
    case 'outputs_invalid':
      return r.error ?? 'outputs: $TASK_OUTPUTS cannot be taken';
    case 'exited':
      return r.signal ? `command was killed by ${r.signal}` : `command exited with code ${r.exitCode}`;
  }
}

function failureType(r: ShellRunResult, nonRetryableExit: boolean): string {
  switch (r.outcome) {
    case 'timed_out':
      return SHELL_FAILURE_TYPES.timeout;
    case 'spawn_error':
      return SHELL_FAILURE_TYPES.spawn;
    case 'resource_limit':
      return SHELL_FAILURE_TYPES.resourceLimit;
    case 'isolation_failed':
      return SHELL_FAILURE_TYPES.isolationFailed;
    case 'outputs_invalid':
      return SHELL_FAILURE_TYPES.outputsInvalid;
    default:
      return nonRetryableExit ? SHELL_FAILURE_TYPES.nonRetryableExitCode : SHELL_FAILURE_TYPES.exitCode;
  }
}

/** What a shell attempt reports with each heartbeat; the next attempt gets the last one. */
interface ShellHeartbeat {
  pid: number;
  host: string;
  stdoutBytes: number;
  stderrBytes: number;
}

/**
 * A worker killed with `kill -9` leaves its task's process group running.
 * When the retry lands on the same host, it ends that group first — but
 * only after checking, through /proc, that the pid still belongs to this
 * run and shard (a recycled pid must not be killed).
 */
async function killLeftoverGroup(previous: ShellHeartbeat | undefined, runId: string, shardIndex: number): Promise<boolean> {
  if (!previous?.pid || previous.host !== hostname()) return false;
  let environ: string;
  try {
    environ = await readFile(`/proc/${previous.pid}/environ`, 'utf8');
  } catch {
    return false; // gone, or not ours to read
  }
  const vars = environ.split('\0');
  if (!vars.includes(`TASK_RUN_ID=${runId}`) || !vars.includes(`SHARD_INDEX=${shardIndex}`)) return false;
  try {
    process.kill(-previous.pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

/**
 * Shell executor activities, hosted by workers of the `shell` task queue.
 * Each attempt is recorded (start, end, output) by the worker that runs it;
 * secret values are decrypted only here and masked as `***` in everything
 * recorded or returned.
 */
export function createShellActivities(deps: ShellActivityDeps) {
  const executor = new ShellExecutor(deps.executor);
  const isolation = deps.executor.isolation ? 'sandbox' : 'none';
  return {
    runShellCommand: (input: ShellActivityInput): Promise<ShellActivityResult> =>
      inRecordedAttempt(
        deps,
        input,
        'shell',
        async ({ ctx, attempt, shardIndex, finish, output, maskInOutput }) => {
          if (attempt > 1 && !deps.executor.isolation)
            await killLeftoverGroup(ctx.info.heartbeatDetails as ShellHeartbeat | undefined, input.runId, shardIndex);
          const secretEnv = unsealTaskSecrets(input.secrets, deps.secretsKey, input.tenantId).env ?? {};
          const secrets = secretValuesOf({ env: secretEnv });
          maskInOutput(secrets);
          const raw = await executor.run({
            spec: { ...input.shell, env: { ...(input.shell.env ?? {}), ...secretEnv } },
            timeoutSeconds: input.timeoutSeconds,
            extraEnv: {
              TASK_RUN_ID: input.runId,
              TASK_ATTEMPT: String(attempt),
              SHARD_INDEX: String(shardIndex),
              SHARD_TOTAL: String(input.shardTotal ?? 1),
              // W3C context of this attempt's RunActivity span, for the task to continue the trace (tracing on only).
              ...traceparentEntry('TRACEPARENT'),
            },
            signal: ctx.cancellationSignal,
            heartbeatMs: deps.heartbeatMs,
            // A stalled worker's task must be dead before Temporal (no heartbeat) can start the retry elsewhere.
            ...(ctx.info.heartbeatTimeoutMs && deps.heartbeatMs
              ? { deadManWindowMs: deadManWindowMs(ctx.info.heartbeatTimeoutMs, deps.heartbeatMs) }
              : {}),
            secretValues: secrets,
            onHeartbeat: (progress) => ctx.heartbeat({ ...progress, host: hostname() } satisfies ShellHeartbeat),
            onOutput: output,
          });
          const result: ShellRunResult = { ...raw, stdout: maskStream(raw.stdout, secrets), stderr: maskStream(raw.stderr, secrets) };
          // The unmasked tails stay here; history gets the masked ones below.
          delete result.stdoutTail;
          delete result.stderrTail;
          const allowed = input.shell.allowedExitCodes ?? [0];
          const ok = result.outcome === 'exited' && result.exitCode !== null && allowed.includes(result.exitCode);
          const error = ok ? null : maskSecrets(failureMessage(result, input.timeoutSeconds), secrets);
          const nonRetryableExit = result.exitCode !== null && input.nonRetryableExitCodes.includes(result.exitCode);
          const type = failureType(result, nonRetryableExit);
          await finish({
            status: attemptStatusOf(ok, result.outcome),
            exitCode: result.exitCode,
            httpStatus: null,
            error,
            ...(ok ? {} : { errorType: result.outcome === 'cancelled' ? SHELL_FAILURE_TYPES.cancelled : type }),
            stdout: result.stdout,
            stderr: result.stderr,
            isolation: result.isolation,
            resourceLimit: result.resourceLimit,
            ...(result.setupMs !== undefined ? { isolationSetupMs: result.setupMs } : {}),
          });
          // History gets the end of each stream; all of it is in the run output store.
          const stdout = raw.stdoutTail ? maskTail(raw.stdoutTail, secrets) : tailOf(result.stdout, deps.historyTailBytes);
          const stderr = raw.stderrTail ? maskTail(raw.stderrTail, secrets) : tailOf(result.stderr, deps.historyTailBytes);
          if (ok) {
            return {
              exitCode: result.exitCode as number,
              httpStatus: null,
              stdout,
              stderr,
              durationMs: result.durationMs,
              // A sharded run has no outputs (which shard's would it be?): its history holds none of them.
              outputs: (input.shardTotal ?? 1) > 1 ? null : result.outputs,
            };
          }
          if (result.outcome === 'cancelled') {
            // Surfaces as the cancellation Temporal delivered, so the workflow sees a CancelledFailure.
            ctx.cancellationSignal.throwIfAborted();
          }
          const details: ExecutorFailureDetails = { exitCode: result.exitCode, httpStatus: null, stdout, stderr };
          // Limits and sandbox setup failures retry by the task's policy, like exit codes and timeouts.
          const nonRetryable = NON_RETRYABLE_FAILURE_TYPES.includes(type);
          throw ApplicationFailure.create({ message: error as string, type, nonRetryable, details: [details] });
        },
        isolation,
      ),
  };
}

export type ShellActivities = ReturnType<typeof createShellActivities>;
