import type { AlertDelivery, EnsureRunResult, FinalizeResult, RunFinalization, TaskRunInput } from '@task-scheduler/contracts';
import type { RunRecorder } from './run-recorder';

export { RunRecorder } from './run-recorder';
export type { AttemptEnd, AttemptStart } from './run-recorder';

/** Run-record activities, hosted by workers of the workflow task queue (run as local activities). */
export function createRunActivities(recorder: RunRecorder) {
  return {
    async ensureRunRecord(
      input: TaskRunInput & { runId: string },
      workflowId: string,
      temporalRunId: string,
      scheduledAt: string | null = null,
    ): Promise<EnsureRunResult> {
      return recorder.ensureRun(input, workflowId, temporalRunId, scheduledAt);
    },
    async acquireRunSlot(runId: string, tenantId: string): Promise<boolean> {
      return recorder.acquireSlot(runId, tenantId);
    },
    async finalizeRun(finalization: RunFinalization): Promise<FinalizeResult> {
      return recorder.finalizeRun(finalization);
    },
    async planAlert(runId: string): Promise<AlertDelivery | null> {
      return recorder.planAlert(runId);
    },
  };
}

export type RunActivities = ReturnType<typeof createRunActivities>;
