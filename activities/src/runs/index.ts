import type { RunFinalization, TaskRunInput } from '@task-scheduler/contracts';
import type { RunRecorder } from './run-recorder';

export { RunRecorder } from './run-recorder';
export type { AttemptEnd, AttemptStart } from './run-recorder';

/** Run-record activities, hosted by workers of the workflow task queue. */
export function createRunActivities(recorder: RunRecorder) {
  return {
    async ensureRunRecord(input: TaskRunInput, workflowId: string, temporalRunId: string): Promise<void> {
      await recorder.ensureRun(input, workflowId, temporalRunId);
    },
    async finalizeRun(finalization: RunFinalization): Promise<void> {
      await recorder.finalizeRun(finalization);
    },
  };
}

export type RunActivities = ReturnType<typeof createRunActivities>;
