/* Workflow bundle of test/integration/pipeline-workflow.spec.ts: the real pipeline workflow, and a
 * stand-in for the task-run workflow it starts, which ends as its input says and tells the test when
 * it started and ended (through a local activity of the test's worker). */
import { ApplicationFailure, CancellationScope, isCancellation, proxyLocalActivities, sleep, workflowInfo } from '@temporalio/workflow';
import type { TaskRunInput, TaskRunResult } from '@task-scheduler/contracts';

export { pipelineRunWorkflow } from '../../workflows/src/pipeline-run.workflow';
export { alertDeliveryWorkflow } from '../../workflows/src/alert-delivery.workflow';

/** What the stub child tells the test. */
export interface StubRecorder {
  stubEvent(e: { workflowId: string; event: 'start' | 'end'; outcome?: string }): Promise<void>;
}

const recorder = proxyLocalActivities<StubRecorder>({ startToCloseTimeout: '10s', retry: { maximumAttempts: 3 } });

/**
 * Ends as `shell.env.OUTCOME` says (`succeeded`, `failed`, or `disabled`: the real workflow's answer
 * for a task disabled when its run starts) after `SLEEP_MS`; a cancel during the sleep ends it cancelled.
 */
export async function taskRunWorkflow(input: TaskRunInput & { runId: string }): Promise<TaskRunResult> {
  const { workflowId } = workflowInfo();
  const env = input.shell?.env ?? {};
  const outcome = env.OUTCOME ?? 'succeeded';
  await recorder.stubEvent({ workflowId, event: 'start' });
  try {
    const ms = Number(env.SLEEP_MS ?? '0');
    if (ms > 0) await sleep(ms);
  } catch (err) {
    if (isCancellation(err)) await CancellationScope.nonCancellable(() => recorder.stubEvent({ workflowId, event: 'end', outcome: 'cancelled' }));
    throw err;
  }
  await recorder.stubEvent({ workflowId, event: 'end', outcome });
  if (outcome === 'failed') throw ApplicationFailure.nonRetryable('run failed: exit code 1', 'RunFailed');
  const base = { runId: input.runId, attempts: 1, exitCode: 0, error: null };
  return outcome === 'disabled' ? { ...base, status: 'duplicate', duplicateOf: input.runId } : { ...base, status: 'succeeded' };
}
