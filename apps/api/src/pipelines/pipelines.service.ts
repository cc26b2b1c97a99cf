import { Injectable } from '@nestjs/common';
import { DEFAULT_TRIGGER_RULE, PIPELINE_LIMITS } from '@task-scheduler/contracts';
import type { AlertSpec, PipelineDefinition, PipelineParameter, PipelineStep, RunOverrides } from '@task-scheduler/contracts';
import { PipelineEntity, PipelineVersionEntity, TaskEntity } from '@task-scheduler/db';
import { DataSource, In, IsNull } from 'typeorm';
import type { EntityManager } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import type { RequestContext } from '../auth/request-context';
import { ApiError, ErrorCode } from '../common/api-error';
import { isUniqueViolation } from '../common/db-errors';
import { isUuid, keysetPage } from '../common/pagination';
import type { Page } from '../common/pagination';
import { SchedulesService } from '../schedules/schedules.service';
import { canonicalJson, etagOf, ifMatchHolds } from '../common/versioning';
import type { CreatePipelineDto, PipelineStepDto } from './dtos/create-pipeline.dto';
import type { UpdatePipelineDto } from './dtos/update-pipeline.dto';
import { pipelineProblems } from './pipeline-validation';
import type { StepDraft, StepTask } from './pipeline-validation';

/** The fields a version records and `changedFields` names. */
interface PipelineFields {
  name: string;
  description: string | null;
  definition: PipelineDefinition;
  alerts: AlertSpec | null;
}

const FIELD_NAMES = ['name', 'description', 'parameters', 'steps', 'maxParallelism', 'failurePolicy', 'alerts'] as const;

function flat(f: PipelineFields): Record<(typeof FIELD_NAMES)[number], unknown> {
  const { parameters, steps, maxParallelism, failurePolicy } = f.definition;
  return { name: f.name, description: f.description, parameters, steps, maxParallelism, failurePolicy, alerts: f.alerts };
}

/** The top-level fields that differ, sorted. */
export function changedPipelineFields(before: PipelineFields, after: PipelineFields): string[] {
  const a = flat(before);
  const b = flat(after);
  return FIELD_NAMES.filter((k) => canonicalJson(a[k]) !== canonicalJson(b[k])).sort();
}

function nameTaken(err: unknown, name: string): unknown {
  return isUniqueViolation(err)
    ? new ApiError(ErrorCode.PIPELINE_NAME_TAKEN, `a pipeline named ${JSON.stringify(name)} already exists`)
    : err;
}

function parametersOf(dto: Pick<CreatePipelineDto, 'parameters'>): PipelineParameter[] {
  return (dto.parameters ?? []).map((p) => ({
    name: p.name,
    ...(p.description !== undefined ? { description: p.description } : {}),
    ...(p.required !== undefined ? { required: p.required } : {}),
    ...(p.default !== undefined ? { default: p.default } : {}),
  }));
}

function draftOf(s: PipelineStepDto): StepDraft {
  // The DTO's class instance holds only the fields given; a plain object is what is stored.
  const overrides = s.overrides
    ? (Object.fromEntries(Object.entries(s.overrides).filter(([, v]) => v !== undefined)) as RunOverrides)
    : undefined;
  return {
    key: s.key,
    task: s.task,
    ...(overrides && Object.keys(overrides).length ? { overrides } : {}),
    dependsOn: s.dependsOn ?? [],
    ...(s.when !== undefined ? { when: s.when } : {}),
    ...(s.forEach !== undefined ? { forEach: s.forEach } : {}),
  };
}

/** Pipeline definitions of one tenant: validated as a whole, versioned like tasks. */
@Injectable()
export class PipelinesService {
  constructor(
    private readonly db: DataSource,
    private readonly audit: AuditService,
    private readonly schedules: SchedulesService,
  ) {}

  /**
   * The live tasks of the tenant that the refs name (by id, or else by name), read `FOR SHARE` so a task
   * cannot be deleted or disabled between the check and the commit.
   */
  private async tasksOf(tx: EntityManager, ctx: RequestContext, refs: string[]): Promise<(ref: string) => StepTask | undefined> {
    const ids = refs.filter(isUuid);
    const tasks = refs.length
      ? await tx
          .getRepository(TaskEntity)
          .createQueryBuilder('t')
          .where('t.tenant_id = :tenantId AND t.deleted_at IS NULL', { tenantId: ctx.tenantId })
          .andWhere('(t.id = ANY(:ids::uuid[]) OR t.name = ANY(:names::text[]))', { ids, names: refs })
          .setLock('pessimistic_read')
          .getMany()
      : [];
    const byId = new Map(tasks.map((t) => [t.id, t]));
    const byName = new Map(tasks.map((t) => [t.name, t]));
    return (ref) => byId.get(ref) ?? byName.get(ref);
  }

  /**
   * The definition to store, or 422 PIPELINE_INVALID with every problem. `taskOf` resolves the drafts' tasks;
   * stored steps of an unchanged `steps` name their task by id.
   */
  private definitionOf(
    drafts: StepDraft[],
    rules: { triggerRule: PipelineStep['triggerRule'] }[],
    parameters: PipelineParameter[],
    opts: Pick<PipelineDefinition, 'maxParallelism' | 'failurePolicy'>,
    taskOf: (ref: string) => StepTask | undefined,
    checkTasks: boolean,
  ): PipelineDefinition {
    const problems = pipelineProblems({ steps: drafts, parameters }, taskOf, checkTasks);
    if (problems.length > 0) {
      const shown = problems.slice(0, 3).map((p) => p.message);
      const more = problems.length > 3 ? ` (and ${problems.length - 3} more, see details)` : '';
      throw new ApiError(ErrorCode.PIPELINE_INVALID, `the pipeline is not valid: ${shown.join('; ')}${more}`, problems);
    }
    return {
      parameters,
      steps: drafts.map((d, i) => ({
        key: d.key,
        taskId: taskOf(d.task)?.id ?? d.task,
        ...(d.overrides ? { overrides: d.overrides } : {}),
        dependsOn: d.dependsOn,
        triggerRule: rules[i].triggerRule,
        ...(d.when !== undefined ? { when: d.when } : {}),
        ...(d.forEach !== undefined ? { forEach: d.forEach } : {}),
      })),
      ...opts,
    };
  }

  async create(ctx: RequestContext, dto: CreatePipelineDto): Promise<PipelineEntity> {
    return this.db.transaction(async (tx) => {
      const drafts = dto.steps.map(draftOf);
      const taskOf = await this.tasksOf(
        tx,
        ctx,
        drafts.map((d) => d.task),
      );
      const definition = this.definitionOf(
        drafts,
        dto.steps.map((s) => ({ triggerRule: s.triggerRule ?? DEFAULT_TRIGGER_RULE })),
        parametersOf(dto),
        { maxParallelism: dto.maxParallelism ?? PIPELINE_LIMITS.defaultParallelism, failurePolicy: dto.failurePolicy ?? 'fail_fast' },
        taskOf,
        true,
      );
      const repo = tx.getRepository(PipelineEntity);
      let pipeline: PipelineEntity;
      try {
        pipeline = await repo.save(
          repo.create({
            tenantId: ctx.tenantId,
            name: dto.name,
            description: dto.description ?? null,
            version: 1,
            definition: definition as never,
            alerts: dto.alerts ? { ...dto.alerts } : null,
            deletedAt: null,
          }),
        );
      } catch (err) {
        throw nameTaken(err, dto.name);
      }
      await this.recordVersion(tx, ctx, pipeline, 'create', [...FIELD_NAMES].sort());
      await this.audit.record(tx, ctx, { action: 'pipeline.create', targetType: 'pipeline', targetId: pipeline.id });
      return pipeline;
    });
  }

  private async recordVersion(
    tx: EntityManager,
    ctx: RequestContext,
    p: PipelineEntity,
    action: 'create' | 'update',
    changed: string[],
  ): Promise<void> {
    await tx.getRepository(PipelineVersionEntity).insert({
      pipelineId: p.id,
      tenantId: p.tenantId,
      version: p.version,
      action,
      changedFields: changed,
      name: p.name,
      description: p.description,
      definition: p.definition as never,
      actorKeyId: ctx.apiKeyId,
      actor: ctx.actor,
      requestId: ctx.requestId,
    });
  }

  /** The tenant's live pipeline, its row locked for the rest of the transaction, If-Match checked (as tasks do). */
  private async lockPipeline(
    tx: EntityManager,
    ctx: RequestContext,
    id: string,
    ifMatch: string | undefined,
    mode: 'for_no_key_update' | 'pessimistic_write' = 'for_no_key_update',
  ): Promise<PipelineEntity> {
    const p = isUuid(id)
      ? await tx.getRepository(PipelineEntity).findOne({ where: { id, tenantId: ctx.tenantId, deletedAt: IsNull() }, lock: { mode } })
      : null;
    if (!p) throw new ApiError(ErrorCode.PIPELINE_NOT_FOUND, `pipeline ${id} does not exist`);
    if (!ifMatchHolds(ifMatch, p.version)) {
      throw new ApiError(
        ErrorCode.PIPELINE_VERSION_MISMATCH,
        `pipeline ${p.id} is at version ${p.version} (ETag ${etagOf(p.version)}), not the one If-Match names (${ifMatch}); read it again and redo the change`,
        [{ field: 'if-match', message: `the current version is ${p.version}`, currentVersion: p.version }],
      );
    }
    return p;
  }

  /**
   * Changes a pipeline: the fields given replace the stored ones and the result is validated as a whole. The
   * tasks of steps are checked (unknown, disabled) only when `steps` is given. An effective change is a new
   * version; runs in flight keep the version they started with. A change that changes nothing writes nothing.
   */
  async update(ctx: RequestContext, id: string, dto: UpdatePipelineDto, ifMatch?: string): Promise<PipelineEntity> {
    return this.db.transaction(async (tx) => {
      const cur = await this.lockPipeline(tx, ctx, id, ifMatch);
      const stored = cur.definition;
      const drafts: StepDraft[] = dto.steps
        ? dto.steps.map(draftOf)
        : stored.steps.map((s) => ({
            key: s.key,
            task: s.taskId,
            ...(s.overrides ? { overrides: s.overrides } : {}),
            dependsOn: s.dependsOn,
            ...(s.when !== undefined ? { when: s.when } : {}),
            ...(s.forEach !== undefined ? { forEach: s.forEach } : {}),
          }));
      const rules = dto.steps ? dto.steps.map((s) => ({ triggerRule: s.triggerRule ?? DEFAULT_TRIGGER_RULE })) : stored.steps;
      const taskOf = await this.tasksOf(
        tx,
        ctx,
        drafts.map((d) => d.task),
      );
      const definition = this.definitionOf(
        drafts,
        rules,
        dto.parameters ? parametersOf(dto) : stored.parameters,
        { maxParallelism: dto.maxParallelism ?? stored.maxParallelism, failurePolicy: dto.failurePolicy ?? stored.failurePolicy },
        taskOf,
        dto.steps !== undefined,
      );
      const next: PipelineFields = {
        name: dto.name ?? cur.name,
        description: dto.description !== undefined ? dto.description : cur.description,
        definition,
        alerts: dto.alerts !== undefined ? (dto.alerts ? { ...dto.alerts } : null) : cur.alerts,
      };
      const changed = changedPipelineFields(cur, next);
      if (changed.length === 0) return cur;
      const version = cur.version + 1;
      try {
        await tx
          .getRepository(PipelineEntity)
          .update(
            { id: cur.id },
            { name: next.name, description: next.description, definition: next.definition as never, alerts: next.alerts as never, version },
          );
      } catch (err) {
        throw nameTaken(err, next.name);
      }
      const pipeline = await tx.getRepository(PipelineEntity).findOneByOrFail({ id: cur.id });
      await this.recordVersion(tx, ctx, pipeline, 'update', changed);
      await this.audit.record(tx, ctx, {
        action: 'pipeline.update',
        targetType: 'pipeline',
        targetId: pipeline.id,
        details: { version, changedFields: changed },
      });
      return pipeline;
    });
  }

  /**
   * Deletes a pipeline. Live schedules that start it make it `PIPELINE_IN_USE`, unless `cascade`: then they
   * are deleted with it (in Temporal too). Runs in flight keep running; its runs stay readable; its name is free.
   */
  async remove(
    ctx: RequestContext,
    id: string,
    opts: { cascade?: boolean; ifMatch?: string } = {},
  ): Promise<{ id: string; deletedSchedules: { id: string; name: string }[] }> {
    return this.db.transaction(async (tx) => {
      const p = await this.lockPipeline(tx, ctx, id, opts.ifMatch, 'pessimistic_write');
      const deletedSchedules = await this.schedules.removeUsersOf(
        tx,
        ctx,
        { kind: 'pipeline', tenantId: p.tenantId, id: p.id },
        !!opts.cascade,
      );
      // Taken under the row lock: every run started before the delete was queued earlier (pipeline-runs.service
      // reads the pipeline FOR SHARE when it records a run), and none starts after it.
      await tx.getRepository(PipelineEntity).update({ id: p.id }, { deletedAt: () => 'clock_timestamp()' });
      await this.audit.record(tx, ctx, {
        action: 'pipeline.delete',
        targetType: 'pipeline',
        targetId: p.id,
        details: { version: p.version, cascade: opts.cascade ?? false, deletedSchedules },
      });
      return { id: p.id, deletedSchedules };
    });
  }

  async get(ctx: RequestContext, id: string): Promise<PipelineEntity> {
    const p = isUuid(id)
      ? await this.db.getRepository(PipelineEntity).findOneBy({ id, tenantId: ctx.tenantId, deletedAt: IsNull() })
      : null;
    // Another tenant's pipeline answers exactly like a missing one.
    if (!p) throw new ApiError(ErrorCode.PIPELINE_NOT_FOUND, `pipeline ${id} does not exist`);
    return p;
  }

  list(ctx: RequestContext, limit: number, cursor?: string): Promise<Page<PipelineEntity>> {
    const qb = this.db
      .getRepository(PipelineEntity)
      .createQueryBuilder('p')
      .where('p.tenant_id = :tenantId', { tenantId: ctx.tenantId })
      .andWhere('p.deleted_at IS NULL');
    return keysetPage(qb, 'p', limit, cursor);
  }

  /** The pipeline's versions, newest first. */
  async versions(ctx: RequestContext, id: string, limit: number, cursor?: string): Promise<Page<PipelineVersionEntity>> {
    const p = await this.get(ctx, id);
    const qb = this.db
      .getRepository(PipelineVersionEntity)
      .createQueryBuilder('v')
      .where('v.tenant_id = :tenantId AND v.pipeline_id = :pipelineId', { tenantId: ctx.tenantId, pipelineId: p.id })
      .orderBy('v.version', 'DESC')
      .limit(limit + 1);
    if (cursor !== undefined) qb.andWhere('v.version < :before', { before: versionCursor(cursor) });
    const rows = await qb.getMany();
    const items = rows.slice(0, limit);
    return { items, nextCursor: rows.length > limit ? Buffer.from(String(items[limit - 1].version)).toString('base64url') : null };
  }

  /** The names of the tasks (live or deleted) the pipelines' steps run, by id. */
  async taskNames(ctx: RequestContext, pipelines: readonly PipelineEntity[]): Promise<Map<string, string>> {
    const ids = [...new Set(pipelines.flatMap((p) => p.definition.steps.map((s) => s.taskId)))];
    if (ids.length === 0) return new Map();
    const tasks = await this.db
      .getRepository(TaskEntity)
      .find({ where: { tenantId: ctx.tenantId, id: In(ids) }, select: { id: true, name: true } });
    return new Map(tasks.map((t) => [t.id, t.name]));
  }
}

/** A page of versions is keyed by version number (a pipeline's versions have no id of their own). */
function versionCursor(raw: string): number {
  const n = Number(Buffer.from(raw, 'base64url').toString('utf8'));
  if (!Number.isInteger(n) || n < 1 || n > 2 ** 31 - 1) {
    throw new ApiError(ErrorCode.INVALID_CURSOR, 'cursor is not one this API returned', [
      { field: 'cursor', message: 'pass back the nextCursor of a page, unchanged' },
    ]);
  }
  return n;
}
