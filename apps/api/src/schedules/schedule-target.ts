/* What a schedule fires: a task, or a pipeline with parameters. Pure rules over the request, so that
 * "exactly one target" and "params only for pipelines" are decided in one place (test/unit/schedule-target.spec.ts). */
import type { PipelineParameter } from '@task-scheduler/contracts';
import type { ScheduleEntity } from '@task-scheduler/db';
import { ErrorCode, fieldError } from '../common/api-error';
import { runParams } from '../pipeline-runs/pipeline-params';

export type ScheduleTarget = { kind: 'task'; taskId: string } | { kind: 'pipeline'; pipelineId: string; params: Record<string, unknown> };

/**
 * The target a create request names: exactly one of `taskId` and `pipelineId`; `params` belong to a
 * pipeline schedule (default `{}`). Refused with the field it concerns.
 */
export function targetOf(dto: { taskId?: string; pipelineId?: string; params?: Record<string, unknown> }): ScheduleTarget {
  if (dto.taskId !== undefined && dto.pipelineId !== undefined) {
    throw fieldError(
      ErrorCode.SCHEDULE_TARGET_INVALID,
      'pipelineId',
      'give either taskId or pipelineId, not both: a schedule fires one task or one pipeline',
    );
  }
  if (dto.pipelineId !== undefined) return { kind: 'pipeline', pipelineId: dto.pipelineId, params: { ...(dto.params ?? {}) } };
  if (dto.taskId === undefined) {
    throw fieldError(
      ErrorCode.SCHEDULE_TARGET_INVALID,
      'taskId',
      'give taskId (the task each fire runs) or pipelineId (the pipeline each fire runs)',
    );
  }
  if (dto.params !== undefined) throw paramsOnTask();
  return { kind: 'task', taskId: dto.taskId };
}

/** The target of a stored schedule (the database holds exactly one of the two, by CHECK). */
export function storedTargetOf(s: Pick<ScheduleEntity, 'taskId' | 'pipelineId' | 'params'>): ScheduleTarget {
  return s.pipelineId !== null
    ? { kind: 'pipeline', pipelineId: s.pipelineId, params: s.params ?? {} }
    : { kind: 'task', taskId: s.taskId as string };
}

export function paramsOnTask(): ReturnType<typeof fieldError> {
  return fieldError(ErrorCode.SCHEDULE_TARGET_INVALID, 'params', 'params are for schedules of a pipeline; a task schedule takes none');
}

/**
 * The parameters a pipeline schedule stores: the given ones, once they fit the pipeline's declared
 * parameters (unknown and missing required ones: 422 PIPELINE_PARAMS_INVALID, as a manual run). Defaults are
 * not stored: the worker applies the pipeline's defaults of the moment at each fire.
 */
export function scheduleParams(declared: readonly PipelineParameter[], given: Record<string, unknown>): Record<string, unknown> {
  runParams(declared, given);
  return { ...given };
}
