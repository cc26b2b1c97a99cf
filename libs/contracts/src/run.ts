export const RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'timed_out'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export const FINAL_RUN_STATUSES: readonly RunStatus[] = ['succeeded', 'failed', 'cancelled', 'timed_out'];

export const RUN_TRIGGERS = ['manual', 'schedule', 'pipeline', 'retry'] as const;
export type RunTrigger = (typeof RUN_TRIGGERS)[number];

export const ATTEMPT_STATUSES = ['running', 'succeeded', 'failed', 'timed_out', 'cancelled', 'abandoned'] as const;
export type AttemptStatus = (typeof ATTEMPT_STATUSES)[number];

/** Workflow id of a task run: stable, derived from the run id, unique per run. */
export function runWorkflowId(runId: string): string {
  return `run-${runId}`;
}
