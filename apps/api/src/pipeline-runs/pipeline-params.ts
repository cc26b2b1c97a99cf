import { applyParams } from '@task-scheduler/core';
import type { PipelineParameter } from '@task-scheduler/contracts';
import { ApiError, ErrorCode } from '../common/api-error';

/**
 * The parameters a run records ({@link applyParams}: the given ones with the defaults of the others). Unknown names
 * and missing required ones are refused together (422 PIPELINE_PARAMS_INVALID).
 */
export function runParams(declared: readonly PipelineParameter[], given: Record<string, unknown>): Record<string, unknown> {
  const applied = applyParams(declared, given);
  if ('problems' in applied) {
    throw new ApiError(
      ErrorCode.PIPELINE_PARAMS_INVALID,
      `the parameters do not fit the pipeline: ${applied.problems.map((p) => p.message).join('; ')}`,
      applied.problems.map((p) => ({ ...p })),
    );
  }
  return applied.params;
}
