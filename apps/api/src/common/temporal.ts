import { RUN_SLOT_FREED_SIGNAL, SEARCH_ATTRIBUTES } from '@task-scheduler/contracts';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import type { Logger } from '@nestjs/common';
import { ApiError, ErrorCode } from './api-error';

/** gRPC status codes the API tells apart in Temporal's answers. */
export const GRPC = { INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, FAILED_PRECONDITION: 9, UNAVAILABLE: 14 } as const;

/** The gRPC status code of a raw service error or of one the SDK wrapped as `cause`. */
export function grpcCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | undefined;
  const code = typeof e?.code === 'number' ? e.code : e?.cause?.code;
  return typeof code === 'number' ? code : undefined;
}

/** UNAVAILABLE / DEADLINE_EXCEEDED: Temporal is down or unreachable, worth retrying. */
export function isUnavailable(err: unknown): boolean {
  const code = grpcCode(err);
  return code === GRPC.UNAVAILABLE || code === GRPC.DEADLINE_EXCEEDED;
}

/** INVALID_ARGUMENT: Temporal refused what it was sent. */
export function isInvalidArgument(err: unknown): boolean {
  return grpcCode(err) === GRPC.INVALID_ARGUMENT;
}

/** The product's custom search attributes as typed keys (all Keyword). */
export const SEARCH_ATTRIBUTE_KEYS = {
  tenantId: defineSearchAttributeKey(SEARCH_ATTRIBUTES.tenantId, SearchAttributeType.KEYWORD),
  taskId: defineSearchAttributeKey(SEARCH_ATTRIBUTES.taskId, SearchAttributeType.KEYWORD),
  runId: defineSearchAttributeKey(SEARCH_ATTRIBUTES.runId, SearchAttributeType.KEYWORD),
  trigger: defineSearchAttributeKey(SEARCH_ATTRIBUTES.trigger, SearchAttributeType.KEYWORD),
  pipelineRunId: defineSearchAttributeKey(SEARCH_ATTRIBUTES.pipelineRunId, SearchAttributeType.KEYWORD),
};

/**
 * Asks Temporal to cancel a workflow that is running. Returns null when it was asked, else why there is
 * nothing to ask (`its workflow is terminated`, `… no longer exists`): the workflow ended without closing
 * its record, and the caller ends the record itself. `what` names the record in the unavailable error.
 */
export async function cancelOrGone(client: Client, workflowId: string, what: string): Promise<string | null> {
  const handle = client.workflow.getHandle(workflowId);
  try {
    const { status } = await handle.describe();
    if (status.name !== 'RUNNING') return `its workflow is ${status.name.toLowerCase()}`;
    await handle.cancel();
    return null;
  } catch (err) {
    if (isUnavailable(err))
      throw new ApiError(ErrorCode.TEMPORAL_UNAVAILABLE, `Temporal is unavailable; the ${what} was not cancelled, try again`);
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    return 'its workflow no longer exists';
  }
}

/** How long a request that freed slots waits for its wake signals; those not sent by then are given up. */
const WAKE_DEADLINE_MS = 2000;

/**
 * Signals `runSlotFreed` to the workflows of runs waiting for a slot (runsToWake, tenantRunsToWake), after the
 * commit that freed the slots. Bounded by WAKE_DEADLINE_MS, so that a slow Temporal delays the caller's answer
 * by no more (the change itself is committed already). A run the signal does not reach takes its slot at its
 * own periodic re-check.
 */
export async function wakeWaitingRuns(temporal: Client, workflowIds: readonly string[], logger: Logger): Promise<void> {
  if (workflowIds.length === 0) return;
  await temporal.connection.withDeadline(Date.now() + WAKE_DEADLINE_MS, () =>
    Promise.all(
      workflowIds.map((id) =>
        temporal.workflow
          .getHandle(id)
          .signal(RUN_SLOT_FREED_SIGNAL)
          .catch((err: unknown) => logger.warn({ err, workflowId: id }, 'could not wake a run waiting for a slot')),
      ),
    ),
  );
}
