/**
 * The rules a pipeline definition is held to beyond its DTO's shape: its DAG, its steps' tasks, overrides and
 * expressions. Pure: the service looks the tasks up and passes them in; every problem is reported at once, each
 * as an error detail `{ field, code, message, … }` (docs/api.md, "Pipelines").
 */
import { PIPELINE_LIMITS, upstreamOf, validateDag } from '@task-scheduler/contracts';
import type { DagProblem, ExecutorKind, HttpSpec, PipelineParameter, RunOverrides, ShellSpec } from '@task-scheduler/contracts';
import {
  ExpressionError,
  RunInputError,
  checkExpression,
  isWholeTemplate,
  mergeOverrides,
  overrideTemplates,
  templatesIn,
} from '@task-scheduler/core';
import type { ExpressionReference } from '@task-scheduler/core';
import type { ErrorDetail } from '../common/api-error';

/** A step as given: `task` is an id or a name; the rest as in the DTO. */
export interface StepDraft {
  key: string;
  task: string;
  overrides?: RunOverrides;
  dependsOn: string[];
  when?: string;
  forEach?: unknown[] | string;
}

/** What validation needs of a step's task. */
export interface StepTask {
  id: string;
  name: string;
  executor: ExecutorKind;
  spec: ShellSpec | HttpSpec;
  enabled: boolean;
}

export type PipelineProblemCode =
  DagProblem['code'] | 'unknown_task' | 'task_disabled' | 'bad_expression' | 'bad_reference' | 'bad_overrides' | 'too_many_items';

export interface PipelineProblem extends ErrorDetail {
  field: string;
  code: PipelineProblemCode;
}

function dagField(p: DagProblem, steps: readonly StepDraft[]): string {
  if (p.code === 'too_many_steps' || p.code === 'cycle') return 'steps';
  const i = steps.findIndex((s) => s.key === p.key);
  return p.code === 'invalid_key' || p.code === 'duplicate_key' ? `steps[${i}].key` : `steps[${i}].dependsOn`;
}

/**
 * Every problem of the steps, in step order after the DAG's own. `taskOf` gives the task a step's `task` names
 * in the tenant (undefined: none, which is also what another tenant's task looks like); `checkTasks` false skips
 * the unknown/disabled checks (a change that leaves the steps alone is not refused for what happened to their
 * tasks since: a run reports that step as it comes).
 */
export function pipelineProblems(
  def: { steps: readonly StepDraft[]; parameters: readonly PipelineParameter[] },
  taskOf: (ref: string) => StepTask | undefined,
  checkTasks = true,
): PipelineProblem[] {
  const { steps } = def;
  const problems: PipelineProblem[] = validateDag(steps).map((p) => {
    const { code, message, ...extra } = p;
    return { field: dagField(p, steps), code, message, ...extra };
  });
  const params = new Set(def.parameters.map((p) => p.name));
  const keys = new Set(steps.map((s) => s.key));
  steps.forEach((step, i) => {
    const at = `steps[${i}]`;
    const add = (field: string, code: PipelineProblemCode, message: string, extra: Record<string, unknown> = {}): void => {
      problems.push({ field, code, message, ...extra });
    };
    let upstream: Set<string> | undefined; // only a step reference needs it
    const references = (field: string, expr: string, itemAllowed: boolean): void => {
      let refs: ExpressionReference[];
      try {
        refs = checkExpression(expr);
      } catch (err) {
        if (!(err instanceof ExpressionError)) throw err;
        return add(field, 'bad_expression', `${field}: ${err.message}`, { expression: expr });
      }
      for (const r of refs) {
        if (r.kind === 'step' && !(upstream ??= upstreamOf(steps, step.key)).has(r.key)) {
          const why = keys.has(r.key)
            ? 'which is not upstream of it (add it to dependsOn, directly or through another step)'
            : 'which is not a step of this pipeline';
          add(field, 'bad_reference', `${field}: step ${step.key} reads steps.${r.key}, ${why}`, {
            expression: expr,
            reference: `steps.${r.key}`,
          });
        }
        if (r.kind === 'param' && !params.has(r.name)) {
          add(field, 'bad_reference', `${field}: params.${r.name} is not a parameter of this pipeline`, {
            expression: expr,
            reference: `params.${r.name}`,
          });
        }
        if (r.kind === 'item' && !itemAllowed) {
          const where = step.forEach === undefined ? 'only a step with forEach has them' : 'they exist only in the overrides of the step';
          add(field, 'bad_reference', `${field}: item and itemIndex cannot be read here; ${where}`, {
            expression: expr,
            reference: 'item',
          });
        }
      }
    };

    const task = taskOf(step.task);
    if (checkTasks && !task) {
      add(`${at}.task`, 'unknown_task', `${at}.task: there is no task ${JSON.stringify(step.task)} in this tenant`, { task: step.task });
    } else if (checkTasks && task && !task.enabled) {
      add(`${at}.task`, 'task_disabled', `${at}.task: task ${task.name} (${task.id}) is disabled`, { taskId: task.id });
    }
    const overrides = step.overrides ?? {};
    if (task) {
      try {
        mergeOverrides(task, overrides);
      } catch (err) {
        if (!(err instanceof RunInputError)) throw err;
        for (const d of err.details) add(`${at}.${d.field}`, 'bad_overrides', `${at}.${d.field}: ${d.message}`);
      }
    }
    let templates: { path: string; expr: string }[] = [];
    try {
      templates = overrideTemplates(overrides);
    } catch (err) {
      if (!(err instanceof ExpressionError)) throw err;
      add(`${at}.${err.path ?? 'overrides'}`, 'bad_expression', `${at}.${err.message}`);
    }
    for (const t of templates) references(`${at}.${t.path}`, t.expr, step.forEach !== undefined);
    if (step.when !== undefined) references(`${at}.when`, step.when, false);
    if (Array.isArray(step.forEach) && step.forEach.length > PIPELINE_LIMITS.maxItemsPerStep) {
      add(
        `${at}.forEach`,
        'too_many_items',
        `${at}.forEach: a step runs at most ${PIPELINE_LIMITS.maxItemsPerStep} items (this list has ${step.forEach.length})`,
        { limit: PIPELINE_LIMITS.maxItemsPerStep },
      );
    } else if (typeof step.forEach === 'string') {
      if (!isWholeTemplate(step.forEach)) {
        add(`${at}.forEach`, 'bad_expression', `${at}.forEach: a string forEach must be exactly one {{ expression }} that gives a list`, {
          expression: step.forEach,
        });
      } else {
        references(`${at}.forEach`, templatesIn(step.forEach)[0], false);
      }
    }
  });
  return problems;
}
