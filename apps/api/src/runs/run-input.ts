import type { AppConfig } from '@task-scheduler/config';
import { taskQueues } from '@task-scheduler/contracts';
import type { HttpSpec, RunOverrides, RunTrigger, ShellSpec, TaskRunInput, TenantShellPolicy } from '@task-scheduler/contracts';
import { effectiveCaps, resolveShellLimits } from '@task-scheduler/core';
import type { TaskEntity } from '@task-scheduler/db';
import { ApiError, ErrorCode } from '../common/api-error';

const SHELL_OVERRIDES: (keyof RunOverrides)[] = ['env', 'args'];
const HTTP_OVERRIDES: (keyof RunOverrides)[] = ['variables', 'headers', 'body'];

/** The task's spec with the trigger's parameters merged over it. */
export function mergeOverrides(task: TaskEntity, o: RunOverrides): { shell?: ShellSpec; http?: HttpSpec } {
  const allowed = task.executor === 'shell' ? SHELL_OVERRIDES : HTTP_OVERRIDES;
  const wrong = (Object.keys(o) as (keyof RunOverrides)[]).filter((k) => o[k] !== undefined && !allowed.includes(k));
  if (wrong.length > 0) {
    const message = `${wrong.join(', ')} cannot override a ${task.executor} task (it takes ${allowed.join(', ')})`;
    throw new ApiError(
      ErrorCode.VALIDATION_FAILED,
      message,
      wrong.map((k) => ({ field: `overrides.${k}`, message })),
    );
  }
  if (task.executor === 'shell') {
    const spec = task.spec as ShellSpec;
    if (o.args && spec.script !== undefined) {
      const message = 'args cannot override a script task (only a command task takes args)';
      throw new ApiError(ErrorCode.VALIDATION_FAILED, message, [{ field: 'overrides.args', message }]);
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
 * The input of `taskRunWorkflow` for a run of `task`: the manual and retry
 * paths name the run; a schedule's action has no run id (each fire draws one)
 * and names its schedule instead.
 */
export function runInputOf(
  config: AppConfig,
  task: TaskEntity,
  r: { trigger: RunTrigger; overrides?: RunOverrides; runId?: string; scheduleId?: string; shellPolicy: TenantShellPolicy | null },
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
export function shellForRun(config: AppConfig, spec: ShellSpec, policy: TenantShellPolicy | null, forSchedule = false): ShellSpec {
  const forbidden = egressForbidden(spec, policy);
  if (forbidden && !forSchedule) {
    throw new ApiError(
      ErrorCode.TASK_EGRESS_FORBIDDEN,
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
