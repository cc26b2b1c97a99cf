import { Inject, Injectable } from '@nestjs/common';
import type { AppConfig } from '@task-scheduler/config';
import { DEFAULT_RETRY } from '@task-scheduler/contracts';
import type { HttpSpec, RetrySpec, ShellLimits, ShellSpec, TenantShellPolicy } from '@task-scheduler/contracts';
import { effectiveCaps, limitsAboveCaps, parseSecretsKey, sealSecrets } from '@task-scheduler/core';
import type { TaskSecretValues } from '@task-scheduler/core';
import { TaskEntity, TenantEntity } from '@task-scheduler/db';
import { DataSource, IsNull } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import type { RequestContext } from '../auth/request-context';
import { ApiError, ErrorCode } from '../common/api-error';
import { isUniqueViolation } from '../common/db-errors';
import { isUuid, keysetPage } from '../common/pagination';
import type { Page } from '../common/pagination';
import { APP_CONFIG } from '../infra/tokens';
import type { CreateTaskDto, HttpSpecDto, ShellSpecDto } from './dtos/create-task.dto';

const DEFAULT_TIMEOUT_SECONDS = 3600;

function invalid(field: string, message: string): ApiError {
  return new ApiError(ErrorCode.VALIDATION_FAILED, `${field}: ${message}`, [{ field, message }]);
}

/** The executor's spec, checked against the executor kind; secrets are split off to be sealed. */
function specOf(dto: CreateTaskDto): { spec: ShellSpec | HttpSpec; secrets: TaskSecretValues } {
  const other = dto.executor === 'shell' ? 'http' : 'shell';
  if (dto[other] !== undefined) throw invalid(other, `${other} does not go with executor ${dto.executor}`);
  if (dto.executor === 'http') {
    const h: HttpSpecDto | undefined = dto.http;
    if (!h) throw invalid('http', 'http is required when executor is http');
    const spec: HttpSpec = {
      method: h.method,
      url: h.url,
      ...(h.headers ? { headers: h.headers } : {}),
      ...(h.body !== undefined ? { body: h.body } : {}),
      ...(h.variables ? { variables: h.variables } : {}),
      ...(h.expectedStatus ? { expectedStatus: h.expectedStatus } : {}),
    };
    return { spec, secrets: h.secretHeaders ? { headers: h.secretHeaders } : {} };
  }
  return { spec: shellSpecOf(dto.shell), secrets: dto.shell?.secretEnv ? { env: dto.shell.secretEnv } : {} };
}

function shellSpecOf(s: ShellSpecDto | undefined): ShellSpec {
  if (!s) {
    throw new ApiError(ErrorCode.VALIDATION_FAILED, 'shell is required when executor is shell', [
      { field: 'shell', message: 'shell is required when executor is shell' },
    ]);
  }
  if ((s.command === undefined) === (s.script === undefined)) {
    throw new ApiError(ErrorCode.VALIDATION_FAILED, 'give exactly one of shell.command and shell.script', [
      { field: 'shell.command', message: 'give exactly one of shell.command and shell.script' },
    ]);
  }
  if (s.script !== undefined && s.args !== undefined) {
    throw new ApiError(ErrorCode.VALIDATION_FAILED, 'shell.args goes with shell.command, not shell.script', [
      { field: 'shell.args', message: 'shell.args goes with shell.command, not shell.script' },
    ]);
  }
  return {
    ...(s.command !== undefined ? { command: s.command, args: s.args ?? [] } : { script: s.script }),
    ...(s.env ? { env: s.env } : {}),
    ...(s.allowedExitCodes ? { allowedExitCodes: s.allowedExitCodes } : {}),
    ...(s.workingDirectory ? { workingDirectory: s.workingDirectory } : {}),
    ...(s.network ? { network: s.network } : {}),
    ...(s.limits ? { limits: Object.fromEntries(Object.entries(s.limits).filter(([, v]) => v !== undefined)) } : {}),
  };
}

function retryOf(dto: CreateTaskDto): RetrySpec {
  const r = { ...DEFAULT_RETRY, ...Object.fromEntries(Object.entries(dto.retry ?? {}).filter(([, v]) => v !== undefined)) };
  if (r.maximumIntervalSeconds < r.initialIntervalSeconds) {
    throw new ApiError(ErrorCode.VALIDATION_FAILED, 'retry.maximumIntervalSeconds must not be less than retry.initialIntervalSeconds', [
      { field: 'retry.maximumIntervalSeconds', message: 'must not be less than retry.initialIntervalSeconds' },
    ]);
  }
  return r;
}

/** Refuses what the tenant's shell policy does not allow, before anything is stored. */
function checkShellPolicy(spec: ShellSpec, policy: TenantShellPolicy | null, platformMax: Required<ShellLimits>): void {
  if (spec.network === 'egress' && policy?.allowEgress === false) {
    throw new ApiError(ErrorCode.TASK_EGRESS_FORBIDDEN, 'network egress is turned off for this tenant by the platform admin', [
      { field: 'shell.network', message: 'egress is not allowed for this tenant' },
    ]);
  }
  const above = limitsAboveCaps(spec.limits, effectiveCaps(policy?.maxLimits, platformMax));
  if (above.length > 0) {
    const message = above
      .map((a) => `shell.limits.${a.limit} ${a.value} is above this tenant's cap (or the platform maximum) of ${a.cap}`)
      .join('; ');
    throw new ApiError(
      ErrorCode.TASK_LIMIT_ABOVE_TENANT_CAP,
      message,
      above.map((a) => ({ field: `shell.limits.${a.limit}`, message: `at most ${a.cap}` })),
    );
  }
}

/** Task definitions of one tenant. */
@Injectable()
export class TasksService {
  private readonly secretsKey: Buffer | null;

  constructor(
    private readonly db: DataSource,
    private readonly audit: AuditService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.secretsKey = config.SECRETS_KEY ? parseSecretsKey(config.SECRETS_KEY) : null;
  }

  private seal(ctx: RequestContext, values: TaskSecretValues): string | null {
    if (!values.env && !values.headers) return null;
    if (!this.secretsKey) {
      throw new ApiError(
        ErrorCode.SECRETS_NOT_CONFIGURED,
        'this deployment has no SECRETS_KEY, so it cannot store secret values; set it on the API and the workers',
      );
    }
    return sealSecrets(values, this.secretsKey, ctx.tenantId);
  }

  async create(ctx: RequestContext, dto: CreateTaskDto): Promise<TaskEntity> {
    const { spec, secrets: secretValues } = specOf(dto);
    const secrets = this.seal(ctx, secretValues);
    const retryPolicy = retryOf(dto);
    return this.db.transaction(async (tx) => {
      const repo = tx.getRepository(TaskEntity);
      // Locking the tenant row serialises concurrent creates, so the quota cannot be overshot by a race.
      const tenant = await tx.getRepository(TenantEntity).findOne({ where: { id: ctx.tenantId }, lock: { mode: 'pessimistic_write' } });
      const count = await repo.countBy({ tenantId: ctx.tenantId, deletedAt: IsNull() });
      if (tenant && count >= tenant.maxTasks) {
        throw new ApiError(ErrorCode.TENANT_QUOTA_EXCEEDED, `this tenant already has ${count} tasks, its limit is ${tenant.maxTasks}`, {
          limit: tenant.maxTasks,
        });
      }
      if (tenant && dto.executor === 'shell') checkShellPolicy(spec as ShellSpec, tenant.shellPolicy, this.config.SHELL_MAX_LIMITS);
      let task: TaskEntity;
      try {
        task = await repo.save(
          repo.create({
            tenantId: ctx.tenantId,
            name: dto.name,
            description: dto.description ?? null,
            executor: dto.executor,
            spec,
            timeoutSeconds: dto.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS,
            retryPolicy,
            priority: dto.priority ?? 0,
            tags: dto.tags ?? [],
            metadata: dto.metadata ?? {},
            shardCount: dto.shardCount ?? 1,
            secrets,
            secretNames: {
              ...(secretValues.env ? { env: Object.keys(secretValues.env) } : {}),
              ...(secretValues.headers ? { headers: Object.keys(secretValues.headers) } : {}),
            },
            alerts: dto.alerts ? { ...dto.alerts } : null,
            enabled: dto.enabled ?? true,
            version: 1,
            deletedAt: null,
          }),
        );
      } catch (err) {
        // The unique index on (tenant, name) of live tasks is the one check for duplicate names.
        if (isUniqueViolation(err)) {
          throw new ApiError(ErrorCode.TASK_NAME_TAKEN, `a task named ${JSON.stringify(dto.name)} already exists`);
        }
        throw err;
      }
      await this.audit.record(tx, ctx, { action: 'task.create', targetType: 'task', targetId: task.id });
      return task;
    });
  }

  async get(ctx: RequestContext, id: string): Promise<TaskEntity> {
    const task = isUuid(id) ? await this.db.getRepository(TaskEntity).findOneBy({ id, tenantId: ctx.tenantId, deletedAt: IsNull() }) : null;
    // Another tenant's task answers exactly like a missing one.
    if (!task) throw new ApiError(ErrorCode.TASK_NOT_FOUND, `task ${id} does not exist`);
    return task;
  }

  list(ctx: RequestContext, limit: number, cursor?: string): Promise<Page<TaskEntity>> {
    const qb = this.db
      .getRepository(TaskEntity)
      .createQueryBuilder('t')
      .where('t.tenant_id = :tenantId', { tenantId: ctx.tenantId })
      .andWhere('t.deleted_at IS NULL');
    return keysetPage(qb, 't', limit, cursor);
  }
}
