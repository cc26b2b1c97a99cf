import type { RunStatus, RunTrigger } from './run';
import type { ExecutorKind, HttpSpec, RetrySpec, ShellSpec } from './task';

/** Input of `taskRunWorkflow`: everything needed to run once, frozen at trigger time (overrides already merged). */
export interface TaskRunInput {
  /**
   * Chosen by the API for a manual run. A schedule's action has none (its
   * input is fixed for every fire): the workflow then draws one, and records
   * the fire's scheduled time with it.
   */
  runId?: string;
  /** The product schedule that started this run, if any. */
  scheduleId?: string;
  tenantId: string;
  taskId: string;
  taskVersion: number;
  trigger: RunTrigger;
  executor: ExecutorKind;
  shell?: ShellSpec;
  http?: HttpSpec;
  /**
   * The task's secret values (shell env, http headers), encrypted with the
   * workers' SECRETS_KEY: workflow histories hold ciphertext only, and only
   * the executor activity decrypts.
   */
  secrets?: string | null;
  timeoutSeconds: number;
  retry: RetrySpec;
  /** Parallel shards (each told SHARD_INDEX/SHARD_TOTAL); default 1. */
  shardCount?: number;
  /** The task's priority: waiting runs of a tenant take free slots in priority order. */
  priority?: number;
  /** Queue of the executor activities for this run. */
  shellTaskQueue: string;
  httpTaskQueue?: string;
  /** A silent executor is declared lost after this long; default 15. */
  heartbeatTimeoutSeconds?: number;
  /** Set when the run is a step (or one item of a step) of a pipeline run. */
  pipeline?: PipelineStepRef;
}

/** Where a run sits in a pipeline run. */
export interface PipelineStepRef {
  pipelineRunId: string;
  stepKey: string;
  /** The item of a `forEach` step (also told to the task as ITEM_INDEX); null for a step without one. */
  itemIndex: number | null;
}

/**
 * What a run hands to the steps after it (`{{ steps.<key>.outputs.<name> }}`):
 * a shell task's `$TASK_OUTPUTS` file (`name=value` lines, or a JSON object),
 * an HTTP task's `status` and JSON `body`. At most 64 KiB as JSON
 * (PIPELINE_LIMITS.maxOutputBytes); secret values are never in it.
 */
export type RunOutputs = Record<string, unknown>;

export interface TaskRunResult {
  runId: string;
  /** Set when this workflow found its fire already recorded by another run: it did nothing. */
  duplicateOf?: string;
  status: RunStatus | 'duplicate';
  attempts: number;
  exitCode: number | null;
  error: string | null;
}

/** Identifies one shard's attempt in the executors. */
export interface ShardRef {
  runId: string;
  tenantId: string;
  shardIndex: number;
  shardTotal: number;
}

/** Input of one shell attempt. */
export interface ShellActivityInput extends ShardRef {
  shell: ShellSpec;
  secrets?: string | null;
  timeoutSeconds: number;
  nonRetryableExitCodes: number[];
}

/** Input of one HTTP attempt. */
export interface HttpActivityInput extends ShardRef {
  http: HttpSpec;
  secrets?: string | null;
  timeoutSeconds: number;
  /** Sent as `Idempotency-Key`; the same for every attempt of the run (and shard). */
  idempotencyKey: string;
}

export interface CapturedStream {
  text: string;
  truncated: boolean;
  /** Bytes the process wrote to the stream, including those not kept. */
  bytes: number;
}

/** What a successful attempt of any executor reports. */
export interface AttemptOutput {
  exitCode: number | null;
  httpStatus: number | null;
  /** Shell: standard output. HTTP: the response body. */
  stdout: CapturedStream | null;
  stderr: CapturedStream | null;
  durationMs: number;
  /** What the attempt hands to later pipeline steps; null when it wrote none (histories recorded before outputs lack it). */
  outputs?: RunOutputs | null;
}

export interface ShellActivityResult extends AttemptOutput {
  exitCode: number;
  stdout: CapturedStream;
  stderr: CapturedStream;
}

/** Response headers are not returned: they may echo a secret, and the result is stored in the workflow history. */
export interface HttpActivityResult extends AttemptOutput {
  httpStatus: number;
}

/** Failure types the shell executor raises (the `type` of its ApplicationFailure). */
export const SHELL_FAILURE_TYPES = {
  exitCode: 'ShellExitCode',
  nonRetryableExitCode: 'ShellNonRetryableExitCode',
  timeout: 'ShellTimeout',
  spawn: 'ShellSpawnError',
  cancelled: 'ShellCancelled',
  /** Kept for stored histories: workers no longer raise it (isolation is always on or explicitly off). */
  sandboxUnavailable: 'ShellSandboxUnavailable',
  /** The attempt crossed one of its limits (memory, processes, cpu, …); retried by the task's policy. */
  resourceLimit: 'ShellResourceLimit',
  /** The `$TASK_OUTPUTS` file is over the cap or not in a format outputs take: not retried. */
  outputsInvalid: 'ShellOutputsInvalid',
  /** The worker could not set up the attempt's sandbox; retried (another worker may succeed). */
  isolationFailed: 'ShellIsolationFailed',
} as const;

/** Failure types the HTTP executor raises. */
export const HTTP_FAILURE_TYPES = {
  /** 5xx, 429 or 408: retried; a Retry-After header sets the delay before the next attempt. */
  retryableStatus: 'HttpRetryableStatus',
  network: 'HttpNetworkError',
  /** Any other unexpected status: not retried. */
  unexpectedStatus: 'HttpUnexpectedStatus',
  /** The destination resolved to a refused address (SSRF guard): not retried. */
  addressRefused: 'HttpAddressRefused',
  invalidRequest: 'HttpInvalidRequest',
  timeout: 'HttpTimeout',
} as const;

/** Failure types that end the run without another attempt. */
export const NON_RETRYABLE_FAILURE_TYPES: readonly string[] = [
  SHELL_FAILURE_TYPES.nonRetryableExitCode,
  SHELL_FAILURE_TYPES.spawn,
  SHELL_FAILURE_TYPES.sandboxUnavailable,
  SHELL_FAILURE_TYPES.outputsInvalid,
  HTTP_FAILURE_TYPES.unexpectedStatus,
  HTTP_FAILURE_TYPES.addressRefused,
  HTTP_FAILURE_TYPES.invalidRequest,
];

/** Failure types that mean the attempt ran out of time. */
export const TIMEOUT_FAILURE_TYPES: readonly string[] = [SHELL_FAILURE_TYPES.timeout, HTTP_FAILURE_TYPES.timeout];

/** Details attached to an executor ApplicationFailure so the workflow can record them. */
export interface ExecutorFailureDetails {
  exitCode: number | null;
  httpStatus: number | null;
  stdout: CapturedStream | null;
  stderr: CapturedStream | null;
}

/** Final outcome of one shard. */
export interface ShardOutcome {
  shardIndex: number;
  status: RunStatus;
  attempts: number;
  exitCode: number | null;
  httpStatus: number | null;
  error: string | null;
  stdout: CapturedStream | null;
  stderr: CapturedStream | null;
  outputs?: RunOutputs | null;
}

export interface RunFinalization {
  runId: string;
  status: RunStatus;
  attempts: number;
  exitCode: number | null;
  httpStatus?: number | null;
  error: string | null;
  stdout: CapturedStream | null;
  stderr: CapturedStream | null;
  /** Per-shard outcomes (one entry for an unsharded run). */
  shards?: ShardOutcome[];
  /** The run's outputs (an unsharded run's; a sharded run has none). */
  outputs?: RunOutputs | null;
}

/** What finalizing a run tells the workflow. */
export interface FinalizeResult {
  /** Workflow ids of runs of the same tenant waiting for a slot that may now take one. */
  wakeWorkflowIds?: string[];
  /** What histories recorded before `wakeWorkflowIds` hold instead: run ids (a workflow id was then `run-<id>`). */
  wake?: string[];
  /** Attempts the run made (the most of any shard), as recorded. */
  attempts: number;
}

/** What recording a run's start tells the workflow. */
export interface EnsureRunResult {
  /** Another run already holds this schedule fire: this workflow must not run it again. */
  duplicateOf: string | null;
}

/** Signal a waiting run receives when a slot of its tenant may have freed up. */
export const RUN_SLOT_FREED_SIGNAL = 'runSlotFreed';

/** A webhook call decided by the alert planner. */
export interface AlertDelivery {
  url: string;
  kind: 'failure' | 'recovery';
  /** Sent as `Idempotency-Key`: a retried delivery is recognisable. */
  idempotencyKey: string;
  payload: Record<string, unknown>;
}
