/**
 * The one builder of a task-run workflow's input, shared by every start: the
 * API's manual runs, retries and schedule actions, and the worker's pipeline
 * steps. Ids, queues, limits and the tenant's shell policy cannot drift apart.
 * Bad parameters throw {@link RunInputError}; the API answers it as a 422.
 */
import { taskQueues } from '@task-scheduler/contracts';
import type {
  ExecutorKind,
  HttpSpec,
  PipelineStepRef,
  RetrySpec,
  RunOverrides,
  RunTrigger,
  ShellLimits,
  ShellSpec,
  TaskRunInput,
  TenantShellPolicy,
} from '@task-scheduler/contracts';
import { effectiveCaps, resolveShellLimits } from './shell-limits';

/** The configuration a run's input depends on (a subset of AppConfig). */
export interface RunInputConfig {
  TASK_QUEUE_PREFIX: string;
  HEARTBEAT_TIMEOUT_SECONDS: number;
  SHELL_MAX_LIMITS: Required<ShellLimits>;
  SHELL_DEFAULT_LIMITS: Required<ShellLimits>;
}

/** The task fields a run is built from (a TaskEntity fits). */
export interface RunnableTask {
  id: string;
  tenantId: string;
  version: number;
  executor: ExecutorKind;
  spec: ShellSpec | HttpSpec;
  secrets: string | null;
  timeoutSeconds: number;
  retryPolicy: RetrySpec;
  shardCount: number;
  priority: number;
}

export type RunInputErrorCode = 'VALIDATION_FAILED' | 'TASK_EGRESS_FORBIDDEN';

/** A run's parameters do not fit its task; `details` name the fields. */
export class RunInputError extends Error {
  constructor(
    readonly code: RunInputErrorCode,
    message: string,
    readonly details: { field: string; message: string }[],
  ) {
    super(message);
    this.name = 'RunInputError';
  }
}

const SHELL_OVERRIDES: (keyof RunOverrides)[] = ['env', 'args'];
const HTTP_OVERRIDES: (keyof RunOverrides)[] = ['variables', 'headers', 'body'];

/** The overrides a task of this executor takes. */
export function overridesFor(executor: ExecutorKind): readonly (keyof RunOverrides)[] {
  return executor === 'shell' ? SHELL_OVERRIDES : HTTP_OVERRIDES;
}

/** The task's spec with the trigger's parameters merged over it. */
export function mergeOverrides(task: Pick<RunnableTask, 'executor' | 'spec'>, o: RunOverrides): { shell?: ShellSpec; http?: HttpSpec } {
  const allowed = overridesFor(task.executor);
  const wrong = (Object.keys(o) as (keyof RunOverrides)[]).filter((k) => o[k] !== undefined && !allowed.includes(k));
  if (wrong.length > 0) {
    const message = `${wrong.join(', ')} cannot override a ${task.executor} task (it takes ${allowed.join(', ')})`;
    throw new RunInputError(
      'VALIDATION_FAILED',
      message,
      wrong.map((k) => ({ field: `overrides.${k}`, message })),
    );
  }
  if (task.executor === 'shell') {
    const spec = task.spec as ShellSpec;
    if (o.args && spec.script !== undefined) {
      const message = 'args cannot override a script task (only a command task takes args)';
      throw new RunInputError('VALIDATION_FAILED', message, [{ field: 'overrides.args', message }]);
    }
    return {
      shell: { ...spec, ...(o.env ? { env: { ...(spec.env ?? {}), ...o.env } } : {}), ...(o.args ? { args: o.args } : {}) },
    };
  }
  const spec = task.spec as HttpSpec;
  return {
    http: {
      ...spec,
      ...(o.variables ? { variables: { ...(spec.variables ?? {}), ...o.variables } } : {}),
      ...(o.headers ? { headers: { ...(spec.headers ?? {}), ...o.headers } } : {}),
      ...(o.body !== undefined ? { body: o.body } : {}),
    },
  };
}

/**
 * The input of `taskRunWorkflow` for a run of `task`: the manual, retry and
 * pipeline paths name the run; a schedule's action has no run id (each fire
 * draws one) and names its schedule instead.
 */
export function runInputOf(
  config: RunInputConfig,
  task: RunnableTask,
  r: {
    trigger: RunTrigger;
    overrides?: RunOverrides;
    runId?: string;
    scheduleId?: string;
    shellPolicy: TenantShellPolicy | null;
    pipeline?: PipelineStepRef;
  },
): TaskRunInput {
  const queues = taskQueues(config.TASK_QUEUE_PREFIX);
  const merged = mergeOverrides(task, r.overrides ?? {});
  if (merged.shell) merged.shell = shellForRun(config, merged.shell, r.shellPolicy, r.trigger === 'schedule');
  return {
    ...(r.runId ? { runId: r.runId } : {}),
    ...(r.scheduleId ? { scheduleId: r.scheduleId } : {}),
    tenantId: task.tenantId,
    taskId: task.id,
    taskVersion: task.version,
    trigger: r.trigger,
    executor: task.executor,
    ...merged,
    secrets: task.secrets,
    timeoutSeconds: task.timeoutSeconds,
    retry: task.retryPolicy,
    shardCount: task.shardCount,
    priority: task.priority,
    shellTaskQueue: queues.shell,
    httpTaskQueue: queues.http,
    heartbeatTimeoutSeconds: config.HEARTBEAT_TIMEOUT_SECONDS,
    ...(r.pipeline ? { pipeline: r.pipeline } : {}),
  };
}

/** The task asks for egress, which the tenant's policy now forbids. */
export function egressForbidden(spec: ShellSpec | undefined, policy: TenantShellPolicy | null): boolean {
  return spec?.network === 'egress' && policy?.allowEgress === false;
}

/**
 * The shell spec a run starts with, under the tenant's policy as it is now:
 * limits resolved to concrete values (task, else platform default, never above
 * the tenant's cap or the platform maximum). Egress the platform admin has
 * forbidden since the task was created refuses a run; a schedule's action
 * (built ahead of its fires) gets no network instead, and the schedule is
 * kept paused (see the translator).
 */
export function shellForRun(config: RunInputConfig, spec: ShellSpec, policy: TenantShellPolicy | null, forSchedule = false): ShellSpec {
  const forbidden = egressForbidden(spec, policy);
  if (forbidden && !forSchedule) {
    throw new RunInputError(
      'TASK_EGRESS_FORBIDDEN',
      'this task asks for network egress, which the platform admin has turned off for this tenant',
      [{ field: 'shell.network', message: 'egress is not allowed for this tenant' }],
    );
  }
  const caps = effectiveCaps(policy?.maxLimits, config.SHELL_MAX_LIMITS);
  return {
    ...spec,
    network: forbidden ? 'none' : (spec.network ?? 'none'),
    limits: resolveShellLimits(spec.limits, caps, config.SHELL_DEFAULT_LIMITS),
  };
}
