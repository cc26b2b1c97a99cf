import { Injectable } from '@nestjs/common';
import { DEFAULT_RETRY } from '@task-scheduler/contracts';
import type { RetrySpec, ShellSpec } from '@task-scheduler/contracts';
import { TaskEntity, TenantEntity } from '@task-scheduler/db';
import { DataSource, IsNull } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import type { RequestContext } from '../auth/request-context';
import { ApiError, ErrorCode } from '../common/api-error';
import { isUniqueViolation } from '../common/db-errors';
import { isUuid, keysetPage } from '../common/pagination';
import type { Page } from '../common/pagination';
import type { CreateTaskDto, ShellSpecDto } from './dtos/create-task.dto';

const DEFAULT_TIMEOUT_SECONDS = 3600;

function shellSpecOf(dto: CreateTaskDto): ShellSpec {
  const s: ShellSpecDto | undefined = dto.shell;
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

/** Task definitions of one tenant. */
@Injectable()
export class TasksService {
  constructor(
    private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  async create(ctx: RequestContext, dto: CreateTaskDto): Promise<TaskEntity> {
    const spec = shellSpecOf(dto);
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
            shardCount: 1,
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
