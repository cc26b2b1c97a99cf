import { Inject, Injectable } from '@nestjs/common';
import type { AppConfig } from '@task-scheduler/config';
import { DEFAULT_RETRY } from '@task-scheduler/contracts';
import type { HttpSpec, RetrySpec, ShellLimits, ShellSpec, TenantShellPolicy } from '@task-scheduler/contracts';
import { effectiveCaps, limitsAboveCaps, openSecrets, parseSecretsKey, sealSecrets } from '@task-scheduler/core';
import type { TaskSecretValues } from '@task-scheduler/core';
import { TaskEntity, TaskVersionEntity, TenantEntity } from '@task-scheduler/db';
import type { TaskVersionAction } from '@task-scheduler/db';
import { DataSource, IsNull } from 'typeorm';
import type { EntityManager } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import type { RequestContext } from '../auth/request-context';
import { checkUrlAddress } from '../common/url-address';
import { ApiError, ErrorCode, fieldError } from '../common/api-error';
import { isUniqueViolation } from '../common/db-errors';
import { isUuid, keysetPage } from '../common/pagination';
import type { Page } from '../common/pagination';
import { APP_CONFIG } from '../infra/tokens';
import { SchedulesService } from '../schedules/schedules.service';
import type { CreateTaskDto, HttpSpecDto, ShellSpecDto } from './dtos/create-task.dto';
import type { UpdateTaskDto } from './dtos/update-task.dto';
import { canonicalJson, etagOf, ifMatchHolds } from '../common/versioning';
import { changedFields, definitionOf } from './task-definition';

const DEFAULT_TIMEOUT_SECONDS = 3600;

const invalid = (field: string, message: string): ApiError => fieldError(ErrorCode.VALIDATION_FAILED, field, message);

/** The unique index on (tenant, name) of live tasks is the one check for duplicate names. */
function nameTaken(err: unknown, name: string): unknown {
  return isUniqueViolation(err) ? new ApiError(ErrorCode.TASK_NAME_TAKEN, `a task named ${JSON.stringify(name)} already exists`) : err;
}

/** `***` is how reads show a secret value: sent back, it would replace the real value with the mask. */
function refuseMaskedSecrets(field: string, values: Record<string, string> | undefined): void {
  const masked = Object.keys(values ?? {}).filter((k) => values?.[k] === '***');
  if (masked.length > 0) {
    const message = '*** is the mask reads show, not a value; leave the secrets out to keep the stored ones';
    throw new ApiError(
      ErrorCode.VALIDATION_FAILED,
      `${field}: ${message}`,
      masked.map((k) => ({ field: `${field}.${k}`, message })),
    );
  }
}

/** What {@link specOf} reads: the executor and its block (a create body, or a PATCH merged over the stored task). */
type ExecutorInput = Pick<CreateTaskDto, 'executor' | 'shell' | 'http'>;

/** The executor's spec, checked against the executor kind; secrets are split off to be sealed. */
function specOf(dto: ExecutorInput): { spec: ShellSpec | HttpSpec; secrets: TaskSecretValues } {
  refuseMaskedSecrets('shell.secretEnv', dto.shell?.secretEnv);
  refuseMaskedSecrets('http.secretHeaders', dto.http?.secretHeaders);
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
    throw invalid('shell', 'shell is required when executor is shell');
  }
  if ((s.command === undefined) === (s.script === undefined)) {
    throw invalid('shell.command', 'give exactly one of shell.command and shell.script');
  }
  if (s.script !== undefined && s.args !== undefined) {
    throw invalid('shell.args', 'shell.args goes with shell.command, not shell.script');
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

function retryOf(dto: Pick<CreateTaskDto, 'retry'>, base: RetrySpec = DEFAULT_RETRY): RetrySpec {
  const r = { ...base, ...Object.fromEntries(Object.entries(dto.retry ?? {}).filter(([, v]) => v !== undefined)) };
  if (r.maximumIntervalSeconds < r.initialIntervalSeconds) {
    throw invalid('retry.maximumIntervalSeconds', 'must not be less than retry.initialIntervalSeconds');
  }
  return r;
}

/** Refuses what the tenant's shell policy does not allow, before anything is stored. */
function checkShellPolicy(spec: ShellSpec, policy: TenantShellPolicy | null, platformMax: Required<ShellLimits>): void {
  if (spec.network === 'egress' && policy?.allowEgress === false) {
    throw fieldError(
      ErrorCode.TASK_EGRESS_FORBIDDEN,
      'shell.network',
      'network egress is turned off for this tenant by the platform admin',
    );
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
    private readonly schedules: SchedulesService,
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

  /** The task's HTTP URL and alert webhook, refused now when the worker's address guard would refuse them later. */
  private checkAddresses(executor: string, spec: ShellSpec | HttpSpec, alerts: { webhookUrl: string } | null | undefined): void {
    if (executor === 'http') checkUrlAddress('http.url', (spec as HttpSpec).url, this.config.HTTP_ALLOW_CIDRS);
    if (alerts) checkUrlAddress('alerts.webhookUrl', alerts.webhookUrl, this.config.HTTP_ALLOW_CIDRS);
  }

  async create(ctx: RequestContext, dto: CreateTaskDto): Promise<TaskEntity> {
    const { spec, secrets: secretValues } = specOf(dto);
    this.checkAddresses(dto.executor, spec, dto.alerts);
    const secrets = this.seal(ctx, secretValues);
    const retryPolicy = retryOf(dto);
    return this.db.transaction(async (tx) => {
      const repo = tx.getRepository(TaskEntity);
      // Locking the tenant row serialises concurrent creates, so the quota cannot be overshot by a race.
      const tenant = await tx.getRepository(TenantEntity).findOne({ where: { id: ctx.tenantId }, lock: { mode: 'pessimistic_write' } });
      const count = await repo.countBy({ tenantId: ctx.tenantId, deletedAt: IsNull() });
      if (tenant && count >= tenant.maxTasks) {
        throw new ApiError(ErrorCode.TENANT_QUOTA_EXCEEDED, `this tenant already has ${count} tasks, its limit is ${tenant.maxTasks}`, [
          { message: `at most ${tenant.maxTasks} tasks`, limit: tenant.maxTasks },
        ]);
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
        throw nameTaken(err, dto.name);
      }
      await this.recordVersion(tx, ctx, task, 'create', Object.keys(definitionOf(task)).sort());
      await this.audit.record(tx, ctx, { action: 'task.create', targetType: 'task', targetId: task.id });
      return task;
    });
  }

  private async recordVersion(
    tx: EntityManager,
    ctx: RequestContext,
    task: TaskEntity,
    action: TaskVersionAction,
    changed: string[],
  ): Promise<void> {
    await tx.getRepository(TaskVersionEntity).insert({
      tenantId: task.tenantId,
      taskId: task.id,
      version: task.version,
      action,
      changedFields: changed,
      // jsonb: TypeORM's deep-partial typing cannot follow the definition's `unknown` members.
      definition: definitionOf(task) as never,
      actorKeyId: ctx.apiKeyId,
      actor: ctx.actor,
      requestId: ctx.requestId,
    });
  }

  /**
   * The tenant's live task, its row locked for the rest of the transaction:
   * changes of one task queue behind each other, so If-Match is checked
   * against the version the change will replace and no version is lost or
   * written twice. `FOR NO KEY UPDATE` for changes, `FOR UPDATE` for a
   * delete. A run being started reads the task `FOR SHARE` (RunsService),
   * which conflicts with both: it waits for the change and then sees the task
   * disabled or gone. A schedule being created only takes the foreign key's
   * key-share lock: it does not wait for a change, but does for a delete.
   */
  private async lockTask(
    tx: EntityManager,
    ctx: RequestContext,
    id: string,
    ifMatch: string | undefined,
    mode: 'for_no_key_update' | 'pessimistic_write' = 'for_no_key_update',
  ): Promise<TaskEntity> {
    const task = isUuid(id)
      ? await tx.getRepository(TaskEntity).findOne({ where: { id, tenantId: ctx.tenantId, deletedAt: IsNull() }, lock: { mode } })
      : null;
    if (!task) throw new ApiError(ErrorCode.TASK_NOT_FOUND, `task ${id} does not exist`);
    if (!ifMatchHolds(ifMatch, task.version)) {
      throw new ApiError(
        ErrorCode.TASK_VERSION_MISMATCH,
        `task ${task.id} is at version ${task.version} (ETag ${etagOf(task.version)}), not the one If-Match names (${ifMatch}); read it again and redo the change`,
        [{ field: 'if-match', message: `the current version is ${task.version}`, currentVersion: task.version }],
      );
    }
    return task;
  }

  /**
   * Changes a task: the fields given are validated as on create, merged over
   * the stored task, and the result checked as a whole (executor and spec,
   * retry bounds, the tenant's shell policy). An effective change is a new
   * version; every live schedule of the task gets it for its next fire.
   * A change that changes nothing writes nothing and keeps the version.
   */
  async update(ctx: RequestContext, id: string, dto: UpdateTaskDto, ifMatch?: string): Promise<TaskEntity> {
    // null for a field other than description and alerts is refused by the DTO's validation.
    return this.db.transaction(async (tx) => {
      const cur = await this.lockTask(tx, ctx, id, ifMatch);
      const executor = dto.executor ?? cur.executor;
      const block = executor === 'shell' ? dto.shell : dto.http;
      // The stored spec stands in for a block not given, as long as the executor stays.
      const stored = executor === cur.executor && block === undefined ? cur.spec : undefined;
      const { spec, secrets: secretValues } = specOf({
        executor,
        shell: executor === 'shell' ? ((dto.shell ?? stored) as ShellSpecDto | undefined) : dto.shell,
        http: executor === 'http' ? ((dto.http ?? stored) as HttpSpecDto | undefined) : dto.http,
      });
      this.checkAddresses(executor, spec, dto.alerts);
      const secretsGiven = executor === 'shell' ? dto.shell?.secretEnv !== undefined : dto.http?.secretHeaders !== undefined;
      const keepSecrets = executor === cur.executor && !secretsGiven;
      const secretField = executor === 'shell' ? 'shell.secretEnv' : 'http.secretHeaders';
      const retryPolicy = retryOf(dto, cur.retryPolicy);
      const tenant = await tx.getRepository(TenantEntity).findOneByOrFail({ id: ctx.tenantId });
      if (executor === 'shell') checkShellPolicy(spec as ShellSpec, tenant.shellPolicy, this.config.SHELL_MAX_LIMITS);

      const next: TaskEntity = {
        ...cur,
        ...(dto.name !== undefined ? { name: dto.name } : {}),
        ...(dto.description !== undefined ? { description: dto.description ?? null } : {}),
        executor,
        spec,
        ...(dto.timeoutSeconds !== undefined ? { timeoutSeconds: dto.timeoutSeconds } : {}),
        retryPolicy,
        ...(dto.priority !== undefined ? { priority: dto.priority } : {}),
        ...(dto.tags !== undefined ? { tags: dto.tags } : {}),
        ...(dto.metadata !== undefined ? { metadata: dto.metadata } : {}),
        ...(dto.shardCount !== undefined ? { shardCount: dto.shardCount } : {}),
        ...(dto.alerts !== undefined ? { alerts: dto.alerts ? { ...dto.alerts } : null } : {}),
        ...(keepSecrets
          ? {}
          : {
              secretNames: {
                ...(secretValues.env ? { env: Object.keys(secretValues.env) } : {}),
                ...(secretValues.headers ? { headers: Object.keys(secretValues.headers) } : {}),
              },
            }),
      };
      const changed = changedFields(definitionOf(cur), definitionOf(next));
      // Same names, other values: the definition (names only) cannot show it, the values can.
      const sameExecutor = executor === cur.executor;
      if (sameExecutor && !keepSecrets && !changed.includes(secretField) && !this.sameSecrets(cur, secretValues)) changed.push(secretField);
      if (changed.length === 0) return cur;

      const secrets = keepSecrets ? cur.secrets : this.seal(ctx, secretValues);
      const version = cur.version + 1;
      try {
        await tx.getRepository(TaskEntity).update(
          { id: cur.id },
          {
            name: next.name,
            description: next.description,
            executor: next.executor,
            spec: next.spec as never,
            timeoutSeconds: next.timeoutSeconds,
            retryPolicy: next.retryPolicy as never,
            priority: next.priority,
            tags: next.tags,
            metadata: next.metadata as never,
            shardCount: next.shardCount,
            alerts: next.alerts as never,
            secrets,
            secretNames: next.secretNames,
            version,
          },
        );
      } catch (err) {
        throw nameTaken(err, next.name);
      }
      const task = await tx.getRepository(TaskEntity).findOneByOrFail({ id: cur.id });
      await this.recordVersion(tx, ctx, task, 'update', changed.sort());
      await this.audit.record(tx, ctx, {
        action: 'task.update',
        targetType: 'task',
        targetId: task.id,
        details: { version, changedFields: changed },
      });
      await this.schedules.resyncTaskUsers(tx, task);
      return task;
    });
  }

  /** Whether `values` are the secret values the task holds now (false when they cannot be read). */
  private sameSecrets(task: TaskEntity, values: TaskSecretValues): boolean {
    const none = !values.env && !values.headers;
    if (!task.secrets) return none;
    if (none || !this.secretsKey) return false;
    try {
      return canonicalJson(openSecrets(task.secrets, this.secretsKey, task.tenantId)) === canonicalJson(values);
    } catch {
      return false;
    }
  }

  /**
   * Disables or enables a task (a new version either way). While disabled,
   * manual runs and retries are refused and its schedules are held paused in
   * Temporal (their own pause flag untouched), each with a `paused` event of
   * cause `task_disabled`; enabling resumes them. Disabling a disabled task
   * changes nothing.
   */
  async setEnabled(ctx: RequestContext, id: string, enabled: boolean, ifMatch?: string): Promise<TaskEntity> {
    return this.db.transaction(async (tx) => {
      const cur = await this.lockTask(tx, ctx, id, ifMatch);
      if (cur.enabled === enabled) return cur;
      const version = cur.version + 1;
      await tx.getRepository(TaskEntity).update({ id: cur.id }, { enabled, version });
      const task = await tx.getRepository(TaskEntity).findOneByOrFail({ id: cur.id });
      const action = enabled ? 'enable' : 'disable';
      await this.recordVersion(tx, ctx, task, action, ['enabled']);
      await this.audit.record(tx, ctx, { action: `task.${action}`, targetType: 'task', targetId: task.id, details: { version } });
      await this.schedules.resyncTaskUsers(tx, task, { enabledChanged: true });
      return task;
    });
  }

  /**
   * Deletes a task. Live schedules that use it make it `TASK_IN_USE`, unless
   * `cascade`: then they are deleted with it (in Temporal too). Its runs stay
   * readable; its name is free again.
   */
  async remove(
    ctx: RequestContext,
    id: string,
    opts: { cascade?: boolean; ifMatch?: string } = {},
  ): Promise<{ id: string; deletedSchedules: { id: string; name: string }[] }> {
    return this.db.transaction(async (tx) => {
      const task = await this.lockTask(tx, ctx, id, opts.ifMatch, 'pessimistic_write');
      const deletedSchedules = await this.schedules.removeUsersOf(
        tx,
        ctx,
        { kind: 'task', tenantId: task.tenantId, id: task.id },
        !!opts.cascade,
      );
      // Taken under the row lock: every run started before the delete was queued earlier (runs.service startRun).
      await tx.getRepository(TaskEntity).update({ id: task.id }, { deletedAt: () => 'clock_timestamp()' });
      await this.audit.record(tx, ctx, {
        action: 'task.delete',
        targetType: 'task',
        targetId: task.id,
        details: { version: task.version, cascade: opts.cascade ?? false, deletedSchedules },
      });
      return { id: task.id, deletedSchedules };
    });
  }

  /** The task's versions, newest first. */
  async versions(ctx: RequestContext, id: string, limit: number, cursor?: string): Promise<Page<TaskVersionEntity>> {
    const task = await this.get(ctx, id);
    const qb = this.db
      .getRepository(TaskVersionEntity)
      .createQueryBuilder('v')
      .where('v.tenant_id = :tenantId AND v.task_id = :taskId', { tenantId: ctx.tenantId, taskId: task.id });
    return keysetPage(qb, 'v', limit, cursor);
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
