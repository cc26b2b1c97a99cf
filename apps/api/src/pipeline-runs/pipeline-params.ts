import { PIPELINE_LIMITS } from '@task-scheduler/contracts';
import type { PipelineParameter } from '@task-scheduler/contracts';
import { ApiError, ErrorCode } from '../common/api-error';
import type { ErrorDetail } from '../common/api-error';

/** Whether a run must give the parameter: as it says, else when it has no default. */
export function isRequired(p: PipelineParameter): boolean {
  return p.required ?? p.default === undefined;
}

/**
 * The parameters a run records: the given ones, with the defaults of the others filled in. Unknown names and
 * missing required ones are refused together (422 PIPELINE_PARAMS_INVALID).
 */
export function runParams(declared: readonly PipelineParameter[], given: Record<string, unknown>): Record<string, unknown> {
  const byName = new Map(declared.map((p) => [p.name, p]));
  const problems: ErrorDetail[] = [];
  for (const name of Object.keys(given)) {
    if (!byName.has(name)) {
      const known = declared.length ? `it has: ${declared.map((p) => p.name).join(', ')}` : 'it has none';
      problems.push({ field: `params.${name}`, message: `${name} is not a parameter of this pipeline (${known})` });
    }
  }
  const out: Record<string, unknown> = {};
  for (const p of declared) {
    if (given[p.name] !== undefined) out[p.name] = given[p.name];
    else if (p.default !== undefined) out[p.name] = p.default;
    else if (isRequired(p)) problems.push({ field: `params.${p.name}`, message: `${p.name} is required` });
  }
  if (problems.length === 0 && Buffer.byteLength(JSON.stringify(out)) > PIPELINE_LIMITS.maxParameterBytes) {
    problems.push({
      field: 'params',
      message: `the parameters, defaults included, are over ${PIPELINE_LIMITS.maxParameterBytes} bytes as JSON`,
    });
  }
  if (problems.length > 0) {
    throw new ApiError(
      ErrorCode.PIPELINE_PARAMS_INVALID,
      `the parameters do not fit the pipeline: ${problems.map((p) => p.message).join('; ')}`,
      problems,
    );
  }
  return out;
}
