import { PIPELINE_LIMITS } from '@task-scheduler/contracts';
import type { PipelineParameter } from '@task-scheduler/contracts';

/** What is wrong with one given parameter (or with all of them: `field` 'params'). */
export interface ParamProblem {
  field: string;
  message: string;
}

/** Whether a run must give the parameter: as it says, else when it has no default. */
function isRequired(p: PipelineParameter): boolean {
  return p.required ?? p.default === undefined;
}

/**
 * The parameters a pipeline run records: the given ones, with the defaults
 * of the others filled in; or every problem at once (unknown names, missing
 * required ones, over {@link PIPELINE_LIMITS.maxParameterBytes} as JSON). The
 * one rule for a manual run (the API) and a schedule's fire (the worker: the
 * schedule was checked when written, but the pipeline may have changed since).
 */
export function applyParams(
  declared: readonly PipelineParameter[],
  given: Record<string, unknown>,
): { params: Record<string, unknown> } | { problems: ParamProblem[] } {
  const byName = new Map(declared.map((p) => [p.name, p]));
  const problems: ParamProblem[] = [];
  for (const name of Object.keys(given)) {
    if (!byName.has(name)) {
      const known = declared.length ? `it has: ${declared.map((p) => p.name).join(', ')}` : 'it has none';
      problems.push({ field: `params.${name}`, message: `${name} is not a parameter of this pipeline (${known})` });
    }
  }
  const params: Record<string, unknown> = {};
  for (const p of declared) {
    if (given[p.name] !== undefined) params[p.name] = given[p.name];
    else if (p.default !== undefined) params[p.name] = p.default;
    else if (isRequired(p)) problems.push({ field: `params.${p.name}`, message: `${p.name} is required` });
  }
  if (problems.length === 0 && Buffer.byteLength(JSON.stringify(params)) > PIPELINE_LIMITS.maxParameterBytes) {
    problems.push({
      field: 'params',
      message: `the parameters, defaults included, are over ${PIPELINE_LIMITS.maxParameterBytes} bytes as JSON`,
    });
  }
  return problems.length > 0 ? { problems } : { params };
}
