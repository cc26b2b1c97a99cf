import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { AppConfig } from '@task-scheduler/config';
import { DEFAULT_CATCHUP_WINDOW_SECONDS, temporalScheduleId } from '@task-scheduler/contracts';
import type { OverlapPolicy, SchedulePolicyInput, ShellSpec } from '@task-scheduler/contracts';
import { CalendarEntity, PipelineEntity, ScheduleEntity, TaskEntity, TenantEntity } from '@task-scheduler/db';
import { Client, ScheduleAlreadyRunning, ScheduleNotFoundError } from '@temporalio/client';
import type { ScheduleDescription, ScheduleHandle, ScheduleSpec } from '@temporalio/client';
import { DataSource, In, IsNull } from 'typeorm';
import type { EntityManager } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import type { RequestContext } from '../auth/request-context';
import { ApiError, ErrorCode, fieldError } from '../common/api-error';
import { isUniqueViolation } from '../common/db-errors';
import { isUuid, keysetPage } from '../common/pagination';
import type { Page } from '../common/pagination';
import { APP_CONFIG, TEMPORAL_CLIENT } from '../infra/tokens';
import { isInvalidArgument, isUnavailable } from '../common/temporal';
import type { BackfillScheduleDto, CreateScheduleDto, UpdateScheduleDto } from './dtos/schedule.dto';
import { egressForbidden } from '../runs/run-input';
import { SchedulePreviewService } from './schedule-preview.service';
import { TRIGGER_WAIT_MS, pollForTrigger, takenFire } from './schedule-trigger';
import { validateScheduleSpec } from './spec-validation';
import { createOptionsOf, overlapOf, temporalSpecOf, updateOptionsOf } from './schedule-translator';
import type { DesiredSchedule, DesiredTarget } from './schedule-translator';
import { WORKFLOW_CLOSE_MARGIN_MS, classifyFires } from './fire-classification';
import type { FireList } from './fire-classification';
import { firedTimes, lastFire, runOfWorkflow, windowRuns } from './schedule-runs';
import type { FireRun, LastFire } from './schedule-runs';
import { paramsOnTask, scheduleParams, storedTargetOf, targetOf } from './schedule-target';

/** The schedule's spec without jitter: fire times as run records carry them. */
function nominalSpecOf(s: ScheduleEntity, calendars: readonly CalendarEntity[], opts: { withExclusions?: boolean } = {}): ScheduleSpec {
  return temporalSpecOf({ ...s.spec, jitterSeconds: undefined }, calendars, opts);
}

/** Runs `op` against Temporal, turning its refusals and outages into API errors. */
async function temporalCall<T>(what: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (isUnavailable(err)) {
      throw new ApiError(ErrorCode.TEMPORAL_UNAVAILABLE, `${what}: Temporal is unavailable; nothing was changed, try again`);
    }
    if (isInvalidArgument(err)) {
      throw new ApiError(ErrorCode.SCHEDULE_REJECTED, `Temporal rejected the schedule: ${(err as Error).message}`);
    }
    throw err;
  }
}

/** What Temporal reports of a schedule, when it answers. */
export interface ScheduleLiveState {
  description: ScheduleDescription | null;
  /** `missing`: the row exists but Temporal has no such schedule (the reconciler will recreate it). */
  temporal: 'ok' | 'missing' | 'unavailable';
}

/** Fires one backfill may start. */
const MAX_BACKFILL_FIRES = 10_000;

/**
 * Schedules: a row in PostgreSQL and its Temporal Schedule, changed together.
 * Every change writes the row and calls Temporal inside one transaction, so a
 * Temporal refusal leaves no row; a commit that fails after Temporal accepted
 * leaves drift the reconciler repairs.
 */
@Injectable()
export class SchedulesService {
  private readonly logger = new Logger('SchedulesService');

  constructor(
    private readonly db: DataSource,
    private readonly audit: AuditService,
    private readonly preview: SchedulePreviewService,
    @Inject(TEMPORAL_CLIENT) private readonly temporal: Client,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  handle(schedule: ScheduleEntity): ScheduleHandle {
    return this.temporal.schedule.getHandle(schedule.temporalScheduleId);
  }

  uiUrl(schedule: ScheduleEntity): string {
    const base = this.config.TEMPORAL_UI_URL.replace(/\/$/, '');
    return `${base}/namespaces/${encodeURIComponent(this.config.TEMPORAL_NAMESPACE)}/schedules/${encodeURIComponent(schedule.temporalScheduleId)}`;
  }

  private async calendarsOf(
    tx: EntityManager,
    tenantId: string,
    ids: string[],
    path = 'spec.excludeCalendarIds',
  ): Promise<CalendarEntity[]> {
    if (ids.length === 0) return [];
    // Shared locks: a calendar change or delete waits for this schedule change, and then sees it.
    const found = await tx.getRepository(CalendarEntity).find({
      where: { id: In(ids), tenantId, deletedAt: IsNull() },
      ...(tx.queryRunner ? { lock: { mode: 'pessimistic_read' as const } } : {}),
    });
    ids.forEach((id, i) => {
      if (!found.some((c) => c.id === id)) throw fieldError(ErrorCode.CALENDAR_NOT_FOUND, `${path}[${i}]`, `calendar ${id} does not exist`);
    });
    return ids.map((id) => found.find((c) => c.id === id) as CalendarEntity);
  }

  /** The tenant's live calendars with these ids (for previews); unknown ids are refused naming the field. */
  calendarsFor(ctx: RequestContext, ids: string[]): Promise<CalendarEntity[]> {
    return this.calendarsOf(this.db.manager, ctx.tenantId, ids);
  }

  /** Everything the Temporal side of a schedule is built from. */
  /** The live business calendars a schedule excludes (a deleted one no longer applies). */
  private excludedCalendars(tx: EntityManager, schedule: ScheduleEntity): Promise<CalendarEntity[]> {
    return tx.getRepository(CalendarEntity).findBy({ id: In(schedule.excludeCalendarIds), deletedAt: IsNull() });
  }

  async desiredOf(tx: EntityManager, schedule: ScheduleEntity): Promise<DesiredSchedule> {
    // One after another: inside a transaction the three share one connection.
    const target = storedTargetOf(schedule);
    const desiredTarget: DesiredTarget =
      target.kind === 'task'
        ? { kind: 'task', task: await tx.getRepository(TaskEntity).findOneByOrFail({ id: target.taskId }) }
        : { kind: 'pipeline', pipeline: await tx.getRepository(PipelineEntity).findOneByOrFail({ id: target.pipelineId }) };
    const tenant = await tx.getRepository(TenantEntity).findOneByOrFail({ id: schedule.tenantId });
    const calendars = await this.excludedCalendars(tx, schedule);
    return { schedule, target: desiredTarget, calendars, tenantSuspended: tenant.status === 'suspended', shellPolicy: tenant.shellPolicy };
  }

  /**
   * The task a new schedule fires, read `FOR SHARE` first as every task change locks it: a concurrent task
   * delete, disable or PATCH either finishes before (and is seen here) or waits for this schedule and then
   * includes it.
   */
  private async lockTaskTarget(tx: EntityManager, ctx: RequestContext, taskId: string): Promise<TaskEntity> {
    const task = await tx
      .getRepository(TaskEntity)
      .findOne({ where: { id: taskId, tenantId: ctx.tenantId, deletedAt: IsNull() }, lock: { mode: 'pessimistic_read' } });
    // Another tenant's task answers exactly like a missing one.
    if (!task) throw fieldError(ErrorCode.SCHEDULE_TASK_NOT_FOUND, 'taskId', `task ${taskId} does not exist`);
    if (!task.enabled)
      throw fieldError(ErrorCode.TASK_DISABLED, 'taskId', `task ${task.id} is disabled; a schedule would only start runs it refuses`);
    return task;
  }

  /**
   * The pipeline a schedule fires, read `FOR KEY SHARE`: a pipeline delete (`FOR UPDATE`) waits for this
   * schedule and then sees it, while a pipeline edit need not wait (fires read the pipeline's current version).
   */
  private async lockPipelineTarget(tx: EntityManager, ctx: RequestContext, pipelineId: string): Promise<PipelineEntity> {
    const pipeline = await tx
      .getRepository(PipelineEntity)
      .findOne({ where: { id: pipelineId, tenantId: ctx.tenantId, deletedAt: IsNull() }, lock: { mode: 'for_key_share' } });
    // Another tenant's pipeline answers exactly like a missing one.
    if (!pipeline) throw fieldError(ErrorCode.SCHEDULE_PIPELINE_NOT_FOUND, 'pipelineId', `pipeline ${pipelineId} does not exist`);
    return pipeline;
  }

  /** Refuses a spec whose exclusions leave no fire in the next five years. */
  private async assertFires(d: DesiredSchedule): Promise<void> {
    const fires = await this.preview.firesAtLeastOnce(temporalSpecOf(d.schedule.spec, d.calendars));
    if (!fires) {
      throw fieldError(
        ErrorCode.SCHEDULE_NEVER_FIRES,
        'spec',
        'with its exclusions, start and end this schedule would never fire in the next five years',
      );
    }
  }

  async event(
    tx: EntityManager,
    schedule: ScheduleEntity,
    kind: string,
    note: string | null = null,
    details: Record<string, unknown> = {},
  ): Promise<void> {
    // Wall-clock time, not the transaction's start: callers record an event after Temporal acted.
    await tx.query(
      `INSERT INTO schedule_events (schedule_id, tenant_id, kind, note, details, at) VALUES ($1, $2, $3, $4, $5, clock_timestamp())`,
      [schedule.id, schedule.tenantId, kind, note, details],
    );
  }

  async create(ctx: RequestContext, dto: CreateScheduleDto): Promise<ScheduleEntity> {
    const spec = validateScheduleSpec(dto.spec);
    const target = targetOf(dto);
    const policies: SchedulePolicyInput = {
      overlap: dto.policies?.overlap ?? 'skip',
      catchupWindowSeconds: dto.policies?.catchupWindowSeconds ?? DEFAULT_CATCHUP_WINDOW_SECONDS,
      pauseOnFailure: dto.policies?.pauseOnFailure ?? false,
      remainingActions: dto.policies?.remainingActions ?? null,
    };
    return this.db.transaction(async (tx) => {
      // The target first, as every change of it takes its row first.
      const fires =
        target.kind === 'task'
          ? { taskId: (await this.lockTaskTarget(tx, ctx, target.taskId)).id, pipelineId: null, params: null }
          : await this.lockPipelineTarget(tx, ctx, target.pipelineId).then((p) => ({
              taskId: null,
              pipelineId: p.id,
              params: scheduleParams(p.definition.parameters, target.params),
            }));
      const calendars = await this.calendarsOf(tx, ctx.tenantId, dto.spec.excludeCalendarIds ?? []);
      const repo = tx.getRepository(ScheduleEntity);
      const id = randomUUID();
      const draft = repo.create({
        id,
        temporalScheduleId: temporalScheduleId(this.config.TASK_QUEUE_PREFIX, id),
        tenantId: ctx.tenantId,
        ...fires,
        name: dto.name,
        description: dto.description ?? null,
        spec,
        policies,
        excludeCalendarIds: calendars.map((c) => c.id),
        paused: dto.paused ?? false,
        pauseNote: dto.paused ? (dto.note ?? null) : null,
        version: 1,
        deletedAt: null,
      });
      try {
        // TypeORM's insert type cannot spell a JSON object column (`params`); the row is the entity as created.
        await repo.insert(draft as never);
      } catch (err) {
        if (isUniqueViolation(err))
          throw new ApiError(ErrorCode.SCHEDULE_NAME_TAKEN, `a schedule named ${JSON.stringify(dto.name)} already exists`);
        throw err;
      }
      const schedule = await repo.findOneByOrFail({ id });
      const desired = await this.desiredOf(tx, schedule);
      await this.assertFires(desired);
      await this.audit.record(tx, ctx, {
        action: 'schedule.create',
        targetType: 'schedule',
        targetId: schedule.id,
        details: fires.taskId ? { taskId: fires.taskId } : { pipelineId: fires.pipelineId },
      });
      await temporalCall('the schedule was not created', () => this.temporal.schedule.create(createOptionsOf(this.config, desired)));
      // After Temporal has it: the event's time is when fires can begin.
      await this.event(tx, schedule, 'created');
      if (schedule.paused) await this.event(tx, schedule, 'paused', schedule.pauseNote, { cause: 'user' });
      return schedule;
    });
  }

  /** The tenant's live schedule; inside a transaction (`tx` given) the row is locked, so concurrent changes queue. */
  async get(ctx: RequestContext, id: string, tx?: EntityManager): Promise<ScheduleEntity> {
    const s = isUuid(id)
      ? await (tx ?? this.db.manager).getRepository(ScheduleEntity).findOne({
          where: { id, tenantId: ctx.tenantId, deletedAt: IsNull() },
          ...(tx ? { lock: { mode: 'pessimistic_write' as const } } : {}),
        })
      : null;
    if (!s) throw new ApiError(ErrorCode.SCHEDULE_NOT_FOUND, `schedule ${id} does not exist`);
    return s;
  }

  /** Temporal's view of the schedule (next fires, counters); a Temporal outage degrades to `unavailable`, not an error. */
  async live(schedule: ScheduleEntity): Promise<ScheduleLiveState> {
    try {
      return { description: await this.handle(schedule).describe(), temporal: 'ok' };
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) return { description: null, temporal: 'missing' };
      if (isUnavailable(err)) return { description: null, temporal: 'unavailable' };
      throw err;
    }
  }

  /** The run (a pipeline schedule's: the pipeline run) with the latest scheduled time. */
  lastRun(schedule: ScheduleEntity): Promise<LastFire | null> {
    return lastFire(this.db.manager, schedule);
  }

  list(
    ctx: RequestContext,
    q: { limit: number; cursor?: string; taskId?: string; pipelineId?: string; paused?: boolean },
  ): Promise<Page<ScheduleEntity>> {
    const qb = this.db
      .getRepository(ScheduleEntity)
      .createQueryBuilder('s')
      .where('s.tenant_id = :tenantId', { tenantId: ctx.tenantId })
      .andWhere('s.deleted_at IS NULL');
    if (q.taskId) qb.andWhere('s.task_id = :taskId', { taskId: q.taskId });
    if (q.pipelineId) qb.andWhere('s.pipeline_id = :pipelineId', { pipelineId: q.pipelineId });
    if (q.paused !== undefined) qb.andWhere('s.paused = :paused', { paused: q.paused });
    return keysetPage(qb, 's', q.limit, q.cursor);
  }

  async update(ctx: RequestContext, id: string, dto: UpdateScheduleDto): Promise<ScheduleEntity> {
    const spec = dto.spec ? validateScheduleSpec(dto.spec) : undefined;
    return this.db.transaction(async (tx) => {
      const current = await this.get(ctx, id, tx);
      const params = dto.params !== undefined ? await this.paramsFor(tx, ctx, current, dto.params) : undefined;
      const calendars = dto.spec ? await this.calendarsOf(tx, ctx.tenantId, dto.spec.excludeCalendarIds ?? []) : undefined;
      const next: ScheduleEntity = {
        ...current,
        ...(params ? { params } : {}),
        ...(dto.description !== undefined ? { description: dto.description } : {}),
        ...(spec ? { spec } : {}),
        ...(calendars ? { excludeCalendarIds: calendars.map((c) => c.id) } : {}),
        policies: { ...current.policies, ...Object.fromEntries(Object.entries(dto.policies ?? {}).filter(([, v]) => v !== undefined)) },
        version: current.version + 1,
      };
      const desired = await this.desiredOf(tx, next);
      if (spec) await this.assertFires(desired);
      await tx.getRepository(ScheduleEntity).save(next);
      await this.event(tx, next, 'updated');
      await this.audit.record(tx, ctx, { action: 'schedule.update', targetType: 'schedule', targetId: id });
      const resetRemaining = dto.policies?.remainingActions !== undefined;
      await temporalCall('the schedule was not changed', () => this.sync(tx, next, { resetRemaining, desired }));
      return next;
    });
  }

  /** New parameters of a pipeline schedule, checked against the pipeline's parameters as they are now. */
  private async paramsFor(
    tx: EntityManager,
    ctx: RequestContext,
    s: ScheduleEntity,
    given: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    const target = storedTargetOf(s);
    if (target.kind === 'task') throw paramsOnTask();
    return scheduleParams((await this.lockPipelineTarget(tx, ctx, target.pipelineId)).definition.parameters, given);
  }

  async remove(ctx: RequestContext, id: string): Promise<void> {
    await this.db.transaction(async (tx) => this.removeLocked(tx, ctx, await this.get(ctx, id, tx)));
  }

  /**
   * Deletes a schedule whose row `tx` holds locked, and its Temporal Schedule (also when its task or
   * pipeline is deleted with cascade: `cause`).
   */
  async removeLocked(
    tx: EntityManager,
    ctx: RequestContext,
    s: ScheduleEntity,
    opts: { cause?: 'task_deleted' | 'pipeline_deleted' } = {},
  ): Promise<void> {
    await tx.getRepository(ScheduleEntity).update({ id: s.id }, { deletedAt: new Date() });
    const note = opts.cause ? opts.cause.replace('_', ' ') : null;
    await this.event(tx, s, 'deleted', note, opts.cause ? { cause: opts.cause } : {});
    const target = opts.cause === 'pipeline_deleted' ? { pipelineId: s.pipelineId } : { taskId: s.taskId };
    await this.audit.record(tx, ctx, {
      action: 'schedule.delete',
      targetType: 'schedule',
      targetId: s.id,
      ...(opts.cause ? { details: { cause: opts.cause, ...target } } : {}),
    });
    try {
      await temporalCall('the schedule was not deleted', () => this.handle(s).delete());
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
  }

  /**
   * Inside the delete of a task or pipeline, its row locked: its live schedules make it `TASK_IN_USE` or
   * `PIPELINE_IN_USE`, unless `cascade`; then they are deleted with it (in Temporal too), which also needs
   * `schedules:write`. Returns the schedules deleted.
   */
  async removeUsersOf(
    tx: EntityManager,
    ctx: RequestContext,
    target: { kind: 'task' | 'pipeline'; tenantId: string; id: string },
    cascade: boolean,
  ): Promise<{ id: string; name: string }[]> {
    const task = target.kind === 'task';
    const users = task
      ? await this.lockTaskUsers(tx, target.tenantId, target.id)
      : await this.lockPipelineUsers(tx, target.tenantId, target.id);
    if (users.length > 0 && !cascade) {
      const code = task ? ErrorCode.TASK_IN_USE : ErrorCode.PIPELINE_IN_USE;
      const what = `${target.kind} ${target.id} is used by ${users.length} schedule(s)`;
      const advice = 'delete them first, or delete with ?cascade=true to delete them too';
      // Names and ids only to a caller who may read schedules; otherwise the count.
      if (!ctx.permissions.has('schedules:read')) {
        throw new ApiError(code, `${what}; ${advice}`, [
          {
            field: 'schedules',
            message: `${users.length} schedule(s) ${task ? 'use this task' : 'start this pipeline'}`,
            count: users.length,
          },
        ]);
      }
      throw new ApiError(
        code,
        `${what}: ${users.map((s) => JSON.stringify(s.name)).join(', ')}; ${advice}`,
        users.map((s) => ({
          field: 'schedules',
          message: `schedule ${JSON.stringify(s.name)} (${s.id}) ${task ? 'uses this task' : 'starts this pipeline'}`,
          scheduleId: s.id,
          scheduleName: s.name,
        })),
      );
    }
    if (users.length > 0 && !ctx.permissions.has('schedules:write')) {
      throw new ApiError(ErrorCode.FORBIDDEN, 'deleting with cascade=true deletes schedules: it needs the schedules:write permission', [
        { message: 'missing permission schedules:write', permission: 'schedules:write' },
      ]);
    }
    for (const s of users) await this.removeLocked(tx, ctx, s, { cause: task ? 'task_deleted' : 'pipeline_deleted' });
    return users.map((s) => ({ id: s.id, name: s.name }));
  }

  /** Locks (and returns) the live schedules of a task, after the task's own row (the order every task change takes). */
  lockTaskUsers(tx: EntityManager, tenantId: string, taskId: string): Promise<ScheduleEntity[]> {
    return tx
      .getRepository(ScheduleEntity)
      .createQueryBuilder('s')
      .where('s.tenant_id = :tenantId AND s.task_id = :taskId AND s.deleted_at IS NULL', { tenantId, taskId })
      .orderBy('s.created_at')
      .setLock('pessimistic_write')
      .getMany();
  }

  /** Locks (and returns) the live schedules of a pipeline, after the pipeline's own row (as {@link lockTaskUsers}). */
  private lockPipelineUsers(tx: EntityManager, tenantId: string, pipelineId: string): Promise<ScheduleEntity[]> {
    return tx
      .getRepository(ScheduleEntity)
      .createQueryBuilder('s')
      .where('s.tenant_id = :tenantId AND s.pipeline_id = :pipelineId AND s.deleted_at IS NULL', { tenantId, pipelineId })
      .orderBy('s.created_at')
      .setLock('pessimistic_write')
      .getMany();
  }

  /**
   * After a task changed (inside its transaction, its row locked): every live
   * schedule of it gets the new version into its Temporal action, so the next
   * fire runs it; fires already started keep the input they were given. When
   * the task was disabled or enabled, each schedule is held paused or released
   * in Temporal and gets a `paused`/`resumed` event of cause `task_disabled`.
   * A Temporal refusal rolls the change back; a schedule Temporal holds with an
   * older task version is repaired by the reconciler.
   */
  async resyncTaskUsers(tx: EntityManager, task: TaskEntity, opts: { enabledChanged?: boolean } = {}): Promise<number> {
    const users = await this.lockTaskUsers(tx, task.tenantId, task.id);
    for (const s of users) {
      await temporalCall("the task's schedules were not changed", () => this.sync(tx, s));
      if (opts.enabledChanged) {
        await this.event(tx, s, task.enabled ? 'resumed' : 'paused', task.enabled ? 'task enabled' : 'task disabled', {
          cause: 'task_disabled',
          taskVersion: task.version,
        });
      }
    }
    return users.length;
  }

  async setPaused(ctx: RequestContext, id: string, paused: boolean, note?: string): Promise<ScheduleEntity> {
    return this.db.transaction(async (tx) => {
      const s = await this.get(ctx, id, tx);
      const next: ScheduleEntity = { ...s, paused, pauseNote: paused ? (note ?? null) : null };
      await tx.getRepository(ScheduleEntity).update({ id: s.id }, { paused, pauseNote: next.pauseNote });
      await this.audit.record(tx, ctx, { action: paused ? 'schedule.pause' : 'schedule.resume', targetType: 'schedule', targetId: s.id });
      // Sets the pause state (a suspended tenant keeps it paused) and recreates a schedule Temporal lost.
      await temporalCall('the schedule was not changed', () => this.sync(tx, next));
      await this.event(tx, s, paused ? 'paused' : 'resumed', note ?? null, { cause: 'user' });
      return next;
    });
  }

  /** Runs `op` on the schedule's Temporal handle; a schedule Temporal lost is recreated first and `op` tried again. */
  private async onTemporal(tx: EntityManager, s: ScheduleEntity, what: string, op: (h: ScheduleHandle) => Promise<unknown>): Promise<void> {
    await temporalCall(what, async () => {
      try {
        await op(this.handle(s));
      } catch (err) {
        if (!(err instanceof ScheduleNotFoundError)) throw err;
        await this.sync(tx, s);
        await op(this.handle(s));
      }
    });
  }

  /**
   * Refuses to fire a schedule whose fire the worker would refuse: its pipeline was deleted or its stored
   * parameters no longer fit the pipeline, or its task is disabled or asks for egress the tenant may no
   * longer use (its action has no network).
   */
  private async assertMayFire(tx: EntityManager, s: ScheduleEntity): Promise<void> {
    const d = await this.desiredOf(tx, s);
    if (d.target.kind === 'pipeline') {
      const { pipeline } = d.target;
      if (pipeline.deletedAt)
        throw fieldError(ErrorCode.SCHEDULE_PIPELINE_NOT_FOUND, 'pipelineId', `pipeline ${pipeline.id} of this schedule was deleted`);
      // The worker would refuse the fire (recorded cancelled): say so now, naming what no longer fits.
      scheduleParams(pipeline.definition.parameters, s.params ?? {});
      return;
    }
    const { task } = d.target;
    if (!task.enabled) {
      throw new ApiError(ErrorCode.TASK_DISABLED, `task ${task.id} of this schedule is disabled; enable it to fire the schedule`, [
        { field: 'taskId', message: 'the task is disabled' },
      ]);
    }
    if (egressForbidden(task.spec as ShellSpec, d.shellPolicy)) {
      throw new ApiError(
        ErrorCode.TASK_EGRESS_FORBIDDEN,
        'the task asks for network egress, which the platform admin has turned off for this tenant',
        [{ field: 'shell.network', message: 'egress is not allowed for this tenant' }],
      );
    }
  }

  /**
   * Fires now, by default under the schedule's own overlap policy (Temporal's
   * trigger alone would allow overlaps), and answers with the run the fire
   * started. Temporal names a fire's workflow after its time to the second, so
   * two fires in one second would collide: triggers of one schedule are
   * serialised on its row and spaced two seconds apart. Temporal takes a
   * trigger asynchronously and tells no caller which workflow it started, so
   * the schedule is described before and after: the first action Temporal
   * took after the call whose nominal time (in its workflow id) is not one the
   * spec matches is this fire (the spacing means another trigger cannot be
   * mistaken for it, nor can a natural fire in the same moment). Its workflow
   * records the run first thing; both waits are bounded. A fire the overlap
   * policy skipped or buffered started no run: that is
   * `SCHEDULE_TRIGGER_NOT_STARTED`, not a success.
   */
  async trigger(ctx: RequestContext, id: string, overlap?: OverlapPolicy): Promise<FireRun> {
    const taken = await this.db.transaction(async (tx) => {
      const s = await this.get(ctx, id, tx);
      await this.assertMayFire(tx, s);
      const [last]: { at: Date }[] = await tx.query(
        `SELECT at FROM schedule_events WHERE schedule_id = $1 AND kind = 'triggered' ORDER BY at DESC LIMIT 1`,
        [s.id],
      );
      const lastSecond = last ? Math.floor(last.at.getTime() / 1000) : -1;
      const now = Date.now();
      // Two seconds, not one: Temporal names the fire by the second in which it processes the trigger, a little later.
      if (Math.floor(now / 1000) <= lastSecond + 1) await new Promise((r) => setTimeout(r, (lastSecond + 2) * 1000 - now + 5));
      await this.audit.record(tx, ctx, { action: 'schedule.trigger', targetType: 'schedule', targetId: s.id });
      let before: ScheduleDescription | undefined;
      await this.onTemporal(tx, s, 'the schedule was not triggered', async (h) => {
        before = await h.describe();
      });
      const calledAt = Date.now();
      await this.onTemporal(tx, s, 'the schedule was not triggered', (h) => h.trigger(overlapOf(overlap ?? s.policies.overlap)));
      await this.event(tx, s, 'triggered', null, { overlap: overlap ?? s.policies.overlap ?? 'skip' });
      return { s, before: before as ScheduleDescription, calledAt, policy: overlap ?? s.policies.overlap ?? 'skip' };
    });
    // After the commit: the fire's run row references the schedule row this transaction held locked.
    const workflowId = await takenFire({
      scheduleId: taken.s.id,
      nominalSpec: nominalSpecOf(taken.s, await this.excludedCalendars(this.db.manager, taken.s)),
      describe: () => this.handle(taken.s).describe(),
      before: taken.before,
      calledAt: taken.calledAt,
      policy: taken.policy,
    });
    const run = await pollForTrigger(() => runOfWorkflow(this.db.manager, taken.s, workflowId));
    if (run) return run;
    const listing = taken.s.pipelineId ? 'GET /v1/pipeline-runs?trigger=schedule' : 'GET /v1/runs?trigger=schedule';
    throw new ApiError(
      ErrorCode.SCHEDULE_RUN_NOT_RECORDED,
      `the fire started workflow ${workflowId}, but its run was not recorded within ${TRIGGER_WAIT_MS / 1000} s (are workers running?); do not trigger again, the run appears in ${listing} once a worker records it`,
      [{ message: `workflow ${workflowId} started; its run is not recorded yet`, workflowId }],
    );
  }

  /**
   * Starts the fires of a past range. Each fire has at most one run (the
   * run record's unique (schedule, scheduled time) decides), so with
   * `onlyMissing` (the default) only the fires without a run are sent to
   * Temporal, one short range each; without it the whole range is, and
   * fires that already ran are recorded as duplicates and do nothing.
   */
  async backfill(
    ctx: RequestContext,
    id: string,
    dto: BackfillScheduleDto,
  ): Promise<{ fires: number; alreadyRan: number; started: number }> {
    const start = new Date(dto.start);
    const end = new Date(dto.end);
    if (end <= start) throw fieldError(ErrorCode.SCHEDULE_INVALID_RANGE, 'end', 'end must be after start');
    if (end.getTime() > Date.now())
      throw fieldError(ErrorCode.SCHEDULE_INVALID_RANGE, 'end', 'a backfill covers the past: end must not be in the future');
    const s = await this.get(ctx, id);
    await this.assertMayFire(this.db.manager, s);
    const calendars = await this.excludedCalendars(this.db.manager, s);
    const fires = await this.preview.matchingTimes({ spec: nominalSpecOf(s, calendars) }, start, MAX_BACKFILL_FIRES + 1, { until: end });
    if (fires.filter((t) => t <= end).length > MAX_BACKFILL_FIRES) {
      throw fieldError(
        ErrorCode.SCHEDULE_INVALID_RANGE,
        'end',
        `the range holds more than ${MAX_BACKFILL_FIRES} fires; backfill it in parts (the first part could end at ${fires[MAX_BACKFILL_FIRES - 1].toISOString()})`,
      );
    }
    const inRange = fires.filter((t) => t >= start && t <= end);
    const ranAt = await firedTimes(this.db.manager, s, start, end);
    const missing = inRange.filter((t) => !ranAt.has(t.getTime()));
    const overlap = overlapOf(dto.overlap ?? 'allow_all');
    // Temporal places a backfilled fire at its jittered time and only takes those inside the range.
    const jitterMs = (s.spec.jitterSeconds ?? 0) * 1000;
    const onlyMissing = dto.onlyMissing ?? true;
    await this.db.transaction(async (tx) => {
      await this.event(tx, s, 'backfilled', null, {
        start: dto.start,
        end: dto.end,
        onlyMissing,
        fires: inRange.length,
        missing: missing.length,
      });
      await this.audit.record(tx, ctx, { action: 'schedule.backfill', targetType: 'schedule', targetId: s.id });
      const ranges = onlyMissing
        ? missing.map((t) => ({ start: new Date(t.getTime() - 500), end: new Date(t.getTime() + 500 + jitterMs), overlap }))
        : [{ start, end: new Date(end.getTime() + jitterMs), overlap }];
      if (ranges.length > 0) await this.onTemporal(tx, s, 'the backfill was not started', (h) => h.backfill(ranges));
    });
    return { fires: inRange.length, alreadyRan: inRange.length - missing.length, started: missing.length };
  }

  /**
   * The schedule's fires in [from, to]: those that ran (with lateness), and
   * those that did not, each with why — paused, skipped for overlap, missed
   * beyond the catch-up window, or excluded by a calendar or exclusion rule.
   */
  async fires(ctx: RequestContext, id: string, from: Date, to: Date, limit: number): Promise<FireList> {
    const s = await this.get(ctx, id);
    const calendars = await this.excludedCalendars(this.db.manager, s);
    const now = Date.now();
    let until = new Date(Math.min(to.getTime(), now));
    // Fires begin when Temporal had the schedule (the 'created' event is written after it did).
    const [created]: { at: Date }[] = await this.db.query(`SELECT at FROM schedule_events WHERE schedule_id = $1 AND kind = 'created'`, [
      s.id,
    ]);
    const notBefore = new Date(Math.max(from.getTime(), (created?.at ?? s.createdAt).getTime()));
    const [expected, unexcluded, runs, events] = await Promise.all([
      this.preview.matchingTimes({ spec: nominalSpecOf(s, calendars) }, notBefore, limit, { until }),
      this.preview.matchingTimes({ spec: nominalSpecOf(s, calendars, { withExclusions: false }) }, notBefore, limit, { until }),
      windowRuns(this.db.manager, s, from, until, WORKFLOW_CLOSE_MARGIN_MS),
      this.db.query(
        `SELECT kind, at, details->>'cause' AS cause FROM schedule_events WHERE schedule_id = $1 AND kind IN ('paused', 'resumed') ORDER BY at, id`,
        [s.id],
      ) as Promise<{ kind: string; at: Date; cause: string | null }[]>,
    ]);
    // More fires than the limit: report the first `limit` of the window, and where to continue.
    const truncated = unexcluded.length >= limit;
    if (truncated) until = unexcluded[unexcluded.length - 1];
    const records = classifyFires({ expected, unexcluded, runs, events, overlap: s.policies.overlap, from, until, now });
    return {
      items: records.sort((a, b) => b.scheduledAt.localeCompare(a.scheduledAt)),
      nextFrom: truncated ? new Date(until.getTime() + 1).toISOString() : null,
    };
  }

  /**
   * Brings one schedule's Temporal side in line with its row (pause state
   * included), creating it if missing. `desired`: what the caller already
   * loaded for this row in this transaction.
   */
  async sync(
    tx: EntityManager,
    schedule: ScheduleEntity,
    opts: { resetRemaining?: boolean; desired?: DesiredSchedule } = {},
  ): Promise<'created' | 'updated'> {
    const desired = opts.desired ?? (await this.desiredOf(tx, schedule));
    try {
      await this.handle(schedule).update((prev) =>
        updateOptionsOf(this.config, desired, opts.resetRemaining ?? false, prev.state.remainingActions),
      );
      return 'updated';
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
      try {
        await this.temporal.schedule.create(createOptionsOf(this.config, desired));
      } catch (createErr) {
        // Recreated by someone else (the reconciler, another request) in between: update that one.
        if (!(createErr instanceof ScheduleAlreadyRunning)) throw createErr;
        await this.handle(schedule).update((prev) => updateOptionsOf(this.config, desired, false, prev.state.remainingActions));
      }
      return 'created';
    }
  }

  /**
   * Locks (and returns) the live schedules excluding a calendar. A calendar
   * change takes these locks before it touches the calendar row — the same
   * order as a schedule change (schedule row, then its calendars) — so the
   * two wait for each other instead of deadlocking or working on stale rows.
   */
  lockCalendarUsers(tx: EntityManager, tenantId: string, calendarId: string): Promise<ScheduleEntity[]> {
    return tx
      .getRepository(ScheduleEntity)
      .createQueryBuilder('s')
      .where('s.tenant_id = :tenantId AND s.deleted_at IS NULL AND :calendarId = ANY(s.exclude_calendar_ids)', { tenantId, calendarId })
      .setLock('pessimistic_write')
      .getMany();
  }

  /** After a calendar changed: every schedule excluding it (locked by {@link lockCalendarUsers}) gets the new exclusions, a new version each. */
  async resyncCalendarUsers(tx: EntityManager, users: readonly ScheduleEntity[], calendarId: string): Promise<number> {
    for (const s of users) {
      const next = { ...s, version: s.version + 1 };
      await tx.getRepository(ScheduleEntity).update({ id: s.id }, { version: next.version });
      await this.event(tx, next, 'updated', null, { calendarId });
      const desired = await this.desiredOf(tx, next);
      await this.assertFires(desired);
      await temporalCall('the schedules using this calendar were not changed', () => this.sync(tx, next, { desired }));
    }
    return users.length;
  }

  /**
   * A tenant was suspended or resumed: its schedules are paused in Temporal
   * while it is suspended, and get their own state back when it resumes.
   * Temporal errors are logged and left to the reconciler.
   */
  /** Writes every schedule of the tenant to Temporal again (after a change of the tenant's shell policy). */
  async resyncTenant(tenantId: string): Promise<void> {
    const schedules = await this.db.getRepository(ScheduleEntity).findBy({ tenantId, deletedAt: IsNull() });
    for (const s of schedules) {
      try {
        await this.db.transaction((tx) => this.sync(tx, s));
      } catch (err) {
        this.logger.warn({ err, scheduleId: s.id }, 'could not resync schedule after a tenant policy change; the reconciler will');
      }
    }
  }

  async applyTenantState(tenantId: string, suspended: boolean): Promise<void> {
    const schedules = await this.db.getRepository(ScheduleEntity).findBy({ tenantId, deletedAt: IsNull() });
    for (const s of schedules) {
      try {
        await this.db.transaction(async (tx) => {
          if (!s.paused)
            await this.event(tx, s, suspended ? 'paused' : 'resumed', suspended ? 'tenant suspended' : 'tenant resumed', {
              cause: 'tenant',
            });
          await this.sync(tx, s);
        });
      } catch (err) {
        this.logger.warn({ err, scheduleId: s.id }, 'could not apply tenant state to schedule; the reconciler will');
      }
    }
  }
}
