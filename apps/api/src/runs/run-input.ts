/**
 * The API's face of the shared run-input builder (libs/core/src/run-input.ts):
 * the same functions, with a {@link RunInputError} answered as the 422 it is.
 */
import type { AppConfig } from '@task-scheduler/config';
import type { HttpSpec, RunOverrides, ShellSpec, TaskRunInput } from '@task-scheduler/contracts';
import * as core from '@task-scheduler/core';
import type { TaskEntity } from '@task-scheduler/db';
import { ApiError, ErrorCode } from '../common/api-error';

export { egressForbidden } from '@task-scheduler/core';

function answered<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof core.RunInputError) throw new ApiError(ErrorCode[err.code], err.message, err.details);
    throw err;
  }
}

/** The task's spec with the trigger's parameters merged over it (422 when they do not fit). */
export function mergeOverrides(task: TaskEntity, o: RunOverrides): { shell?: ShellSpec; http?: HttpSpec } {
  return answered(() => core.mergeOverrides(task, o));
}

/** The input of `taskRunWorkflow` for a run of `task` (see the core builder). */
export function runInputOf(config: AppConfig, task: TaskEntity, r: Parameters<typeof core.runInputOf>[2]): TaskRunInput {
  return answered(() => core.runInputOf(config, task, r));
}
