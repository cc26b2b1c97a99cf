/**
 * Custom search attributes (`RunId` is reserved by Temporal, hence `TaskRunId`) the product sets on every run workflow, so an
 * operator can filter runs in the Temporal UI by tenant, task, run and
 * trigger. All are Keyword attributes; a namespace must have them registered
 * (the dev script and the test setup do that).
 */
export const SEARCH_ATTRIBUTES = {
  tenantId: 'TenantId',
  taskId: 'TaskId',
  runId: 'TaskRunId',
  trigger: 'Trigger',
  /** On a pipeline run's workflow and on every step run it starts: the whole pipeline run in one query. */
  pipelineRunId: 'PipelineRunId',
} as const;

export const SEARCH_ATTRIBUTE_NAMES: readonly string[] = Object.values(SEARCH_ATTRIBUTES);
