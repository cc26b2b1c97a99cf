import type { AlertDelivery, PipelineRunOpened, StepItemStart, StepOutcome, StepPreparation } from '@task-scheduler/contracts';
import type { OpenPipelineRun, PipelineRecorder, SettleStep } from './pipeline-recorder';

export { PipelineRecorder, stepRunId } from './pipeline-recorder';
export type { OpenPipelineRun, SettleStep } from './pipeline-recorder';

/** Pipeline-record activities, hosted by workers of the workflow task queue (run as local activities of the pipeline workflow). */
export function createPipelineActivities(recorder: PipelineRecorder) {
  return {
    async openPipelineRun(a: OpenPipelineRun): Promise<PipelineRunOpened> {
      return recorder.openRun(a);
    },
    async prepareStep(a: { pipelineRunId: string; stepKey: string; upstream: Record<string, StepOutcome> }): Promise<StepPreparation> {
      return recorder.prepareStep(a);
    },
    async stepItems(a: { pipelineRunId: string; stepKey: string; from: number; count: number }): Promise<StepItemStart[]> {
      return recorder.stepItems(a);
    },
    async settleStep(a: SettleStep): Promise<void> {
      return recorder.settleStep(a);
    },
    async closePipelineRun(a: {
      pipelineRunId: string;
      status: 'succeeded' | 'failed' | 'cancelled';
      error: string | null;
    }): Promise<{ alert: AlertDelivery | null }> {
      return recorder.closeRun(a);
    },
  };
}

export type PipelineActivities = ReturnType<typeof createPipelineActivities>;
