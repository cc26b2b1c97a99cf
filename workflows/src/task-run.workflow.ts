import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  TimeoutFailure,
  isCancellation,
  proxyActivities,
  proxyLocalActivities,
  workflowInfo,
} from '@temporalio/workflow';
import type { RunActivities, ShellActivities } from '@task-scheduler/activities';
import type { RunFinalization, RunStatus, ShellFailureDetails, TaskRunInput, TaskRunResult } from '@task-scheduler/contracts';
import { SHELL_FAILURE_TYPES } from '@task-scheduler/contracts';

/**
 * Run-record writes are local activities: they run in the workflow worker
 * (which has the database) without a task-queue round trip each, which took
 * a third off the end-to-end latency of a short run (bench/README.md). They
 * retry for hours with capped backoff: a database outage must not lose a
 * final status.
 */
const records = proxyLocalActivities<RunActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '60s', maximumAttempts: 1000 },
});

/** How long a silent shell worker is trusted before its attempt is declared lost. */
const SHELL_HEARTBEAT_TIMEOUT_SECONDS = 15;
/** Beyond the task's own timeout (enforced by the executor): time to kill the group and report. */
const SHELL_REPORT_MARGIN_SECONDS = 60;

function classify(err: unknown): { status: RunStatus; error: string; details: ShellFailureDetails | null } {
  if (isCancellation(err)) return { status: 'cancelled', error: 'run was cancelled', details: null };
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) {
    const details = (cause.details?.[0] as ShellFailureDetails | undefined) ?? null;
    const status: RunStatus = cause.type === SHELL_FAILURE_TYPES.timeout ? 'timed_out' : 'failed';
    return { status, error: cause.message, details };
  }
  if (cause instanceof TimeoutFailure) {
    return cause.timeoutType === 'HEARTBEAT' || cause.timeoutType === 'SCHEDULE_TO_START'
      ? { status: 'failed', error: `worker stopped responding (${cause.message})`, details: null }
      : { status: 'timed_out', error: `attempt timed out (${cause.message})`, details: null };
  }
  return { status: 'failed', error: err instanceof Error ? err.message : String(err), details: null };
}

/**
 * One run of a task: ensure the run is recorded, execute it on the executor's
 * queue with the task's timeout and retry policy, and record its final status.
 * The workflow ends failed (or cancelled) when the run does, so the Temporal
 * UI shows the same outcome as the API.
 */
export async function taskRunWorkflow(input: TaskRunInput): Promise<TaskRunResult> {
  const info = workflowInfo();
  await records.ensureRunRecord(input, info.workflowId, info.runId);

  const shell = proxyActivities<ShellActivities>({
    taskQueue: input.shellTaskQueue,
    startToCloseTimeout: `${input.timeoutSeconds + SHELL_REPORT_MARGIN_SECONDS}s`,
    heartbeatTimeout: `${SHELL_HEARTBEAT_TIMEOUT_SECONDS}s`,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      maximumAttempts: input.retry.maximumAttempts,
      initialInterval: `${input.retry.initialIntervalSeconds}s`,
      backoffCoefficient: input.retry.backoffCoefficient,
      maximumInterval: `${input.retry.maximumIntervalSeconds}s`,
      nonRetryableErrorTypes: [SHELL_FAILURE_TYPES.nonRetryableExitCode, SHELL_FAILURE_TYPES.spawn],
    },
  });

  const finalize = (f: Omit<RunFinalization, 'runId'>): Promise<void> =>
    // Recording the outcome must happen even when the run itself was cancelled.
    CancellationScope.nonCancellable(() => records.finalizeRun({ runId: input.runId, ...f }));

  try {
    const result = await shell.runShellCommand({
      runId: input.runId,
      tenantId: input.tenantId,
      shell: input.shell,
      timeoutSeconds: input.timeoutSeconds,
      nonRetryableExitCodes: input.retry.nonRetryableExitCodes,
    });
    await finalize({
      status: 'succeeded',
      attempts: 0,
      exitCode: result.exitCode,
      error: null,
      stdout: result.stdout,
      stderr: result.stderr,
    });
    return { runId: input.runId, status: 'succeeded', attempts: 0, exitCode: result.exitCode, error: null };
  } catch (err) {
    const { status, error, details } = classify(err);
    await finalize({
      status,
      attempts: 0,
      exitCode: details?.exitCode ?? null,
      error,
      stdout: details?.stdout ?? null,
      stderr: details?.stderr ?? null,
    });
    if (status === 'cancelled') throw err;
    throw ApplicationFailure.nonRetryable(`run ${status}: ${error}`, `Run${status === 'timed_out' ? 'TimedOut' : 'Failed'}`);
  }
}
