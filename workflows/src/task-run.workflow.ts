import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  ParentClosePolicy,
  TimeoutFailure,
  condition,
  defineSignal,
  getExternalWorkflowHandle,
  isCancellation,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  startChild,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { ActivityOptions } from '@temporalio/workflow';
import { SearchAttributeType, WorkflowExecutionAlreadyStartedError, defineSearchAttributeKey } from '@temporalio/common';
import type { HttpActivities, RunActivities, ShellActivities } from '@task-scheduler/activities';
import type {
  AttemptOutput,
  ExecutorFailureDetails,
  RunFinalization,
  RunStatus,
  ShardOutcome,
  TaskRunInput,
  TaskRunResult,
} from '@task-scheduler/contracts';
import {
  NON_RETRYABLE_FAILURE_TYPES,
  RUN_SLOT_FREED_SIGNAL,
  SCHEDULE_SEARCH_ATTRIBUTES,
  SEARCH_ATTRIBUTES,
  TIMEOUT_FAILURE_TYPES,
  runWorkflowId,
} from '@task-scheduler/contracts';
import { alertDeliveryWorkflow } from './alert-delivery.workflow';

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

const slotFreedSignal = defineSignal(RUN_SLOT_FREED_SIGNAL);

const DEFAULT_HEARTBEAT_TIMEOUT_SECONDS = 15;
/** Beyond the task's own timeout (enforced by the executor): time to kill the group and report. */
const REPORT_MARGIN_SECONDS = 60;
/**
 * A waiting run re-checks for a free slot this often (doubling up to the max,
 * jittered so a burst of waiting runs does not re-check in step) in case a
 * wake-up signal was missed; finishing runs wake the next ones directly.
 */
const SLOT_RECHECK_INITIAL_MS = 10_000;
const SLOT_RECHECK_MAX_MS = 60_000;

/** The run's input with its id settled (drawn by the workflow for a scheduled fire). */
type ResolvedRun = TaskRunInput & { runId: string };

const SCHEDULED_START_TIME = defineSearchAttributeKey(SCHEDULE_SEARCH_ATTRIBUTES.scheduledStartTime, SearchAttributeType.DATETIME);

interface Classified {
  status: RunStatus;
  error: string;
  details: ExecutorFailureDetails | null;
}

function classify(err: unknown): Classified {
  if (isCancellation(err)) return { status: 'cancelled', error: 'run was cancelled', details: null };
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure) {
    const details = (cause.details?.[0] as ExecutorFailureDetails | undefined) ?? null;
    const status: RunStatus = cause.type && TIMEOUT_FAILURE_TYPES.includes(cause.type) ? 'timed_out' : 'failed';
    return { status, error: cause.message, details };
  }
  if (cause instanceof TimeoutFailure) {
    return cause.timeoutType === 'HEARTBEAT' || cause.timeoutType === 'SCHEDULE_TO_START'
      ? { status: 'failed', error: `worker stopped responding (${cause.message})`, details: null }
      : { status: 'timed_out', error: `attempt timed out (${cause.message})`, details: null };
  }
  return { status: 'failed', error: err instanceof Error ? err.message : String(err), details: null };
}

/** Waits, as `queued`, until the tenant has a free concurrency slot for the run. */
async function admit(input: ResolvedRun, wakeups: () => number): Promise<void> {
  let recheckMs = SLOT_RECHECK_INITIAL_MS;
  for (;;) {
    const seen = wakeups();
    if (await records.acquireRunSlot(input.runId, input.tenantId)) return;
    // Math.random is deterministic in workflow code (seeded per run), so the jitter replays.
    await condition(() => wakeups() > seen, Math.round(recheckMs * (0.5 + Math.random())));
    recheckMs = Math.min(recheckMs * 2, SLOT_RECHECK_MAX_MS);
  }
}

function executorOptions(input: ResolvedRun, taskQueue: string): ActivityOptions {
  return {
    taskQueue,
    startToCloseTimeout: `${input.timeoutSeconds + REPORT_MARGIN_SECONDS}s`,
    heartbeatTimeout: `${input.heartbeatTimeoutSeconds ?? DEFAULT_HEARTBEAT_TIMEOUT_SECONDS}s`,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    // Tasks of one tenant share dispatch fairly with other tenants' on servers with task-queue fairness.
    priority: { fairnessKey: input.tenantId },
    retry: {
      maximumAttempts: input.retry.maximumAttempts,
      initialInterval: `${input.retry.initialIntervalSeconds}s`,
      backoffCoefficient: input.retry.backoffCoefficient,
      maximumInterval: `${input.retry.maximumIntervalSeconds}s`,
      nonRetryableErrorTypes: [...NON_RETRYABLE_FAILURE_TYPES],
    },
  };
}

/** One shard, with its own retries; resolves with its outcome (never rejects). */
async function runShard(input: ResolvedRun, shardIndex: number, shardTotal: number): Promise<ShardOutcome> {
  const ref = { runId: input.runId, tenantId: input.tenantId, shardIndex, shardTotal };
  let out: AttemptOutput;
  try {
    if (input.executor === 'http') {
      const http = proxyActivities<HttpActivities>(executorOptions(input, input.httpTaskQueue ?? input.shellTaskQueue));
      out = await http.runHttpRequest({
        ...ref,
        http: input.http as NonNullable<TaskRunInput['http']>,
        secrets: input.secrets ?? null,
        timeoutSeconds: input.timeoutSeconds,
        idempotencyKey: shardTotal > 1 ? `${input.runId}-${shardIndex}` : input.runId,
      });
    } else {
      const shell = proxyActivities<ShellActivities>(executorOptions(input, input.shellTaskQueue));
      out = await shell.runShellCommand({
        ...ref,
        shell: input.shell ?? {},
        secrets: input.secrets ?? null,
        timeoutSeconds: input.timeoutSeconds,
        nonRetryableExitCodes: input.retry.nonRetryableExitCodes,
      });
    }
  } catch (err) {
    const { status, error, details } = classify(err);
    return {
      shardIndex,
      status,
      attempts: 0,
      exitCode: details?.exitCode ?? null,
      httpStatus: details?.httpStatus ?? null,
      error,
      stdout: details?.stdout ?? null,
      stderr: details?.stderr ?? null,
      outputs: null,
    };
  }
  // Workers from before outputs report none.
  return { shardIndex, status: 'succeeded', attempts: 0, ...out, outputs: out.outputs ?? null, error: null };
}

/** The run's outcome from its shards': all must succeed; a cancellation wins over failures. */
function combine(shards: ShardOutcome[]): Omit<RunFinalization, 'runId'> {
  if (shards.length === 1) {
    const [s] = shards;
    // The outputs go to the recorder once, as the run's, not again in its shard record.
    return { ...s, shards: [{ ...s, outputs: undefined }] };
  }
  const bad = shards.filter((s) => s.status !== 'succeeded');
  const status: RunStatus =
    bad.length === 0
      ? 'succeeded'
      : bad.some((s) => s.status === 'cancelled')
        ? 'cancelled'
        : bad.some((s) => s.status === 'failed')
          ? 'failed'
          : 'timed_out';
  const error =
    bad.length === 0
      ? null
      : `${bad.length} of ${shards.length} shards did not succeed: ${bad.map((s) => `shard ${s.shardIndex} ${s.status}: ${s.error}`).join('; ')}`;
  // Which shard's outputs would be the run's is not defined: a sharded run has none (its executors return none).
  return { status, attempts: 0, exitCode: null, httpStatus: null, error, stdout: null, stderr: null, outputs: null, shards };
}

/**
 * One run of a task: ensure the run is recorded, wait for a slot of the
 * tenant's concurrency limit, execute every shard on its executor's queue
 * with the task's timeout and retry policy (a failed shard retries alone),
 * record the final status once, hand the freed slot to waiting runs, and
 * raise an alert when one is due. The workflow ends failed (or cancelled)
 * when the run does, so the Temporal UI shows the same outcome as the API.
 */
export async function taskRunWorkflow(given: TaskRunInput): Promise<TaskRunResult> {
  const info = workflowInfo();
  let wakeups = 0;
  setHandler(slotFreedSignal, () => void wakeups++);
  const input: ResolvedRun = { ...given, runId: given.runId ?? uuid4() };
  // A schedule cannot name the run in advance: make the drawn id findable in the Temporal UI.
  if (!given.runId) upsertSearchAttributes({ [SEARCH_ATTRIBUTES.runId]: [input.runId] });
  // A fire of a schedule carries its nominal time; one fire makes at most one run.
  const scheduledAt = given.scheduleId ? (info.typedSearchAttributes.get(SCHEDULED_START_TIME)?.toISOString() ?? null) : null;
  // Not cancellable: a cancel arriving this early must still find the run recorded, so it can be ended `cancelled`.
  const ensured = await CancellationScope.nonCancellable(() => records.ensureRunRecord(input, info.workflowId, info.runId, scheduledAt));
  if (ensured?.duplicateOf) {
    return { runId: ensured.duplicateOf, duplicateOf: ensured.duplicateOf, status: 'duplicate', attempts: 0, exitCode: null, error: null };
  }

  const shardTotal = Math.max(1, input.shardCount ?? 1);
  let outcome: Omit<RunFinalization, 'runId'>;
  let cancellation: unknown = null;
  try {
    await admit(input, () => wakeups);
    const shards = await Promise.all(Array.from({ length: shardTotal }, (_, i) => runShard(input, i, shardTotal)));
    outcome = combine(shards);
  } catch (err) {
    // Only a cancellation while waiting for a slot gets here; shards report their own outcomes.
    if (!isCancellation(err)) throw err;
    cancellation = err;
    outcome = { status: 'cancelled', attempts: 0, exitCode: null, error: 'run was cancelled', stdout: null, stderr: null, shards: [] };
  }

  // Recording the outcome, passing the slot on and alerting must happen even when the run itself was cancelled.
  let attempts = 0;
  await CancellationScope.nonCancellable(async () => {
    const finalized = await records.finalizeRun({ runId: input.runId, ...outcome });
    // Histories recorded before wakeWorkflowIds existed name run ids (every run's workflow id was then run-<id>).
    const wake = finalized.wakeWorkflowIds ?? (finalized.wake ?? []).map(runWorkflowId);
    attempts = finalized.attempts ?? 0; // histories recorded before the field existed replay without it
    await Promise.all(
      wake.map(
        (id) =>
          getExternalWorkflowHandle(id)
            .signal(slotFreedSignal)
            .catch(() => undefined), // already finished or not started yet: it will find the slot itself
      ),
    );
    const delivery = await records.planAlert(input.runId);
    if (delivery && input.httpTaskQueue) {
      try {
        await startChild(alertDeliveryWorkflow, {
          workflowId: `alert-${input.runId}`,
          args: [delivery, input.httpTaskQueue],
          parentClosePolicy: ParentClosePolicy.ABANDON,
        });
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      }
    }
  });

  const result: TaskRunResult = {
    runId: input.runId,
    status: outcome.status,
    attempts,
    exitCode: outcome.exitCode,
    error: outcome.error,
  };
  if (outcome.status === 'succeeded') return result;
  if (outcome.status === 'cancelled') throw cancellation ?? new CancelledFailure('run was cancelled');
  throw ApplicationFailure.nonRetryable(
    `run ${outcome.status}: ${outcome.error}`,
    `Run${outcome.status === 'timed_out' ? 'TimedOut' : 'Failed'}`,
  );
}
