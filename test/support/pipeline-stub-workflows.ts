/* Workflow bundle of test/integration/pipeline-workflow.spec.ts: the real pipeline workflow, and a
 * stand-in for the task-run workflow it starts, which ends as its input says and tells the test when
 * it started and ended. It tells through a sink: sinks run in the worker before the activation's
 * completion goes to the server (so before the parent can learn of the end), and cost no history. */
import { ApplicationFailure, isCancellation, proxySinks, sleep } from '@temporalio/workflow';
import type { Sinks } from '@temporalio/workflow';
import type { TaskRunInput, TaskRunResult } from '@task-scheduler/contracts';

export { pipelineRunWorkflow } from '../../workflows/src/pipeline-run.workflow';
export { alertDeliveryWorkflow } from '../../workflows/src/alert-delivery.workflow';

/** What the stub child tells the test (the sink's function gets the child's workflow info first). */
export interface StubSinks extends Sinks {
  stub: { event(e: { event: 'start' | 'end'; outcome?: string }): void };
}

const { stub } = proxySinks<StubSinks>();

/**
 * Ends as `shell.env.OUTCOME` says after `SLEEP_MS`: `succeeded`; `failed`; `disabled` (the real
 * workflow's answer for a task disabled or deleted when its run starts: result `duplicate`); or
 * `unexpected` (a result the real workflow never returns: status `failed` instead of a failure). A
 * cancel during the sleep ends it cancelled.
 */
export async function taskRunWorkflow(input: TaskRunInput & { runId: string }): Promise<TaskRunResult> {
  const env = input.shell?.env ?? {};
  const outcome = env.OUTCOME ?? 'succeeded';
  stub.event({ event: 'start' });
  try {
    const ms = Number(env.SLEEP_MS ?? '0');
    if (ms > 0) await sleep(ms);
  } catch (err) {
    if (isCancellation(err)) stub.event({ event: 'end', outcome: 'cancelled' });
    throw err;
  }
  stub.event({ event: 'end', outcome });
  if (outcome === 'failed') throw ApplicationFailure.nonRetryable('run failed: exit code 1', 'RunFailed');
  const base = { runId: input.runId, attempts: 1, exitCode: 0, error: null };
  if (outcome === 'disabled') return { ...base, status: 'duplicate', duplicateOf: input.runId };
  if (outcome === 'unexpected') return { ...base, status: 'failed', exitCode: 1 };
  return { ...base, status: 'succeeded' };
}
