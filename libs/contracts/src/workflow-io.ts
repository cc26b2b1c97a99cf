import type { RunStatus, RunTrigger } from './run';
import type { RetrySpec, ShellSpec } from './task';

/** Input of `taskRunWorkflow`: everything needed to run once, frozen at trigger time. */
export interface TaskRunInput {
  runId: string;
  tenantId: string;
  taskId: string;
  taskVersion: number;
  trigger: RunTrigger;
  executor: 'shell';
  shell: ShellSpec;
  timeoutSeconds: number;
  retry: RetrySpec;
  /** Queue of the executor activities for this run. */
  shellTaskQueue: string;
}

export interface TaskRunResult {
  runId: string;
  status: RunStatus;
  attempts: number;
  exitCode: number | null;
  error: string | null;
}

/** Input of one shell attempt. */
export interface ShellActivityInput {
  runId: string;
  tenantId: string;
  shell: ShellSpec;
  timeoutSeconds: number;
  nonRetryableExitCodes: number[];
}

export interface CapturedStream {
  text: string;
  truncated: boolean;
  /** Bytes the process wrote to the stream, including those not kept. */
  bytes: number;
}

export interface ShellActivityResult {
  exitCode: number;
  stdout: CapturedStream;
  stderr: CapturedStream;
  durationMs: number;
}

/** Failure types the shell executor raises (the `type` of its ApplicationFailure). */
export const SHELL_FAILURE_TYPES = {
  exitCode: 'ShellExitCode',
  nonRetryableExitCode: 'ShellNonRetryableExitCode',
  timeout: 'ShellTimeout',
  spawn: 'ShellSpawnError',
  cancelled: 'ShellCancelled',
} as const;

/** Details attached to a shell ApplicationFailure so the workflow can record them. */
export interface ShellFailureDetails {
  exitCode: number | null;
  stdout: CapturedStream;
  stderr: CapturedStream;
}

export interface RunFinalization {
  runId: string;
  status: RunStatus;
  attempts: number;
  exitCode: number | null;
  error: string | null;
  stdout: CapturedStream | null;
  stderr: CapturedStream | null;
}
