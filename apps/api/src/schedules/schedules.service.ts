import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { AppConfig } from '@task-scheduler/config';
import { DEFAULT_CATCHUP_WINDOW_SECONDS, temporalScheduleId } from '@task-scheduler/contracts';
import type { OverlapPolicy, SchedulePolicyInput, ShellSpec } from '@task-scheduler/contracts';
import { CalendarEntity, RunEntity, ScheduleEntity, TaskEntity, TenantEntity } from '@task-scheduler/db';
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
import type { DesiredSchedule } from './schedule-translator';

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

/** Time between a run's recorded end and its workflow's close as Temporal's scheduler sees it, at most. */
const WORKFLOW_CLOSE_MARGIN_MS = 2_000;

export interface FireList {
  /** Newest first. */
  items: FireRecord[];
  /** Set when the window held more fires than one answer: ask again from here. */
  nextFrom: string | null;
}

export interface FireRecord {
  scheduledAt: string;
  outcome: 'ran' | 'missed' | 'excluded';
  runId: string | null;
  runStatus: string | null;
  /** When the run was recorded (its workflow started). */
  startedAt: string | null;
  latenessMs: number | null;
  reason: 'paused' | 'task_disabled' | 'overlap_skip' | 'outside_catchup_window' | 'excluded' | null;
}

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
    const task = await tx.getRepository(TaskEntity).findOneByOrFail({ id: schedule.taskId });
    const tenant = await tx.getRepository(TenantEntity).findOneByOrFail({ id: schedule.tenantId });
    const calendars = await this.excludedCalendars(tx, schedule);
    return { schedule, task, calendars, tenantSuspended: tenant.status === 'suspended', shellPolicy: tenant.shellPolicy };
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
    const task = await this.db.getRepository(TaskEntity).findOneBy({ id: dto.taskId, tenantId: ctx.tenantId, deletedAt: IsNull() });
    // Another tenant's task answers exactly like a missing one.
    if (!task) throw fieldError(ErrorCode.SCHEDULE_TASK_NOT_FOUND, 'taskId', `task ${dto.taskId} does not exist`);
    if (!task.enabled)
      throw fieldError(ErrorCode.TASK_DISABLED, 'taskId', `task ${task.id} is disabled; a schedule would only start runs it refuses`);
    const policies: SchedulePolicyInput = {
      overlap: dto.policies?.overlap ?? 'skip',
      catchupWindowSeconds: dto.policies?.catchupWindowSeconds ?? DEFAULT_CATCHUP_WINDOW_SECONDS,
      pauseOnFailure: dto.policies?.pauseOnFailure ?? false,
      remainingActions: dto.policies?.remainingActions ?? null,
    };
    return this.db.transaction(async (tx) => {
      // A share lock on the task, taken first as every task change does: a concurrent task delete, disable or
      // PATCH either finishes before (and is seen here) or waits for this schedule and then includes it.
      const current = await tx
        .getRepository(TaskEntity)
        .findOne({ where: { id: task.id, deletedAt: IsNull() }, lock: { mode: 'pessimistic_read' } });
      if (!current) throw fieldError(ErrorCode.SCHEDULE_TASK_NOT_FOUND, 'taskId', `task ${dto.taskId} does not exist`);
      if (!current.enabled)
        throw fieldError(ErrorCode.TASK_DISABLED, 'taskId', `task ${task.id} is disabled; a schedule would only start runs it refuses`);
      const calendars = await this.calendarsOf(tx, ctx.tenantId, dto.spec.excludeCalendarIds ?? []);
      const repo = tx.getRepository(ScheduleEntity);
      const id = randomUUID();
      const draft = repo.create({
        id,
        temporalScheduleId: temporalScheduleId(this.config.TASK_QUEUE_PREFIX, id),
        tenantId: ctx.tenantId,
        taskId: task.id,
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
        await repo.insert(draft);
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
        details: { taskId: task.id },
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

  async lastRun(schedule: ScheduleEntity): Promise<RunEntity | null> {
    return this.db.getRepository(RunEntity).findOne({ where: { scheduleId: schedule.id }, order: { scheduledAt: 'DESC' } });
  }

  list(ctx: RequestContext, q: { limit: number; cursor?: string; taskId?: string; paused?: boolean }): Promise<Page<ScheduleEntity>> {
    const qb = this.db
      .getRepository(ScheduleEntity)
      .createQueryBuilder('s')
      .where('s.tenant_id = :tenantId', { tenantId: ctx.tenantId })
      .andWhere('s.deleted_at IS NULL');
    if (q.taskId) qb.andWhere('s.task_id = :taskId', { taskId: q.taskId });
    if (q.paused !== undefined) qb.andWhere('s.paused = :paused', { paused: q.paused });
    return keysetPage(qb, 's', q.limit, q.cursor);
  }

  async update(ctx: RequestContext, id: string, dto: UpdateScheduleDto): Promise<ScheduleEntity> {
    const spec = dto.spec ? validateScheduleSpec(dto.spec) : undefined;
    return this.db.transaction(async (tx) => {
      const current = await this.get(ctx, id, tx);
      const calendars = dto.spec ? await this.calendarsOf(tx, ctx.tenantId, dto.spec.excludeCalendarIds ?? []) : undefined;
      const next: ScheduleEntity = {
        ...current,
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

  async remove(ctx: RequestContext, id: string): Promise<void> {
    await this.db.transaction(async (tx) => this.removeLocked(tx, ctx, await this.get(ctx, id, tx)));
  }

  /** Deletes a schedule whose row `tx` holds locked, and its Temporal Schedule (also when its task is deleted with cascade). */
  async removeLocked(tx: EntityManager, ctx: RequestContext, s: ScheduleEntity, opts: { cause?: 'task_deleted' } = {}): Promise<void> {
    await tx.getRepository(ScheduleEntity).update({ id: s.id }, { deletedAt: new Date() });
    await this.event(tx, s, 'deleted', opts.cause ? 'task deleted' : null, opts.cause ? { cause: opts.cause } : {});
    await this.audit.record(tx, ctx, {
      action: 'schedule.delete',
      targetType: 'schedule',
      targetId: s.id,
      ...(opts.cause ? { details: { cause: opts.cause, taskId: s.taskId } } : {}),
    });
    try {
      await temporalCall('the schedule was not deleted', () => this.handle(s).delete());
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
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
   * Fires now; by default under the schedule's own overlap policy (Temporal's
   * trigger alone would allow overlaps). Temporal names a fire's workflow
   * after its time to the second, so two fires in one second would collide:
   * triggers of one schedule are serialised on its row and spaced a second apart.
   */
  /** Refuses to fire a schedule whose task asks for egress the tenant may no longer use (its action has no network). */
  private async assertMayFire(tx: EntityManager, s: ScheduleEntity): Promise<void> {
    const d = await this.desiredOf(tx, s);
    if (!d.task.enabled) {
      throw new ApiError(ErrorCode.TASK_DISABLED, `task ${d.task.id} of this schedule is disabled; enable it to fire the schedule`, [
        { field: 'taskId', message: 'the task is disabled' },
      ]);
    }
    if (egressForbidden(d.task.spec as ShellSpec, d.shellPolicy)) {
      throw new ApiError(
        ErrorCode.TASK_EGRESS_FORBIDDEN,
        'the task asks for network egress, which the platform admin has turned off for this tenant',
        [{ field: 'shell.network', message: 'egress is not allowed for this tenant' }],
      );
    }
  }

  /**
   * Fires now and answers with the run the fire started. Temporal takes a
   * trigger asynchronously and tells no caller which workflow it started, so
   * the schedule is described before and after: the first action Temporal
   * took after the call whose nominal time (in its workflow id) is not one the
   * spec matches is this fire (triggers of one schedule are two seconds apart,
   * so another trigger cannot be mistaken for it, nor can a natural fire in
   * the same moment). Its workflow records the run first thing; both waits
   * are bounded. A fire the overlap policy skipped or buffered started no run:
   * that is `SCHEDULE_TRIGGER_NOT_STARTED`, not a success.
   */
  async trigger(ctx: RequestContext, id: string, overlap?: OverlapPolicy): Promise<RunEntity> {
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
    const run = await pollForTrigger(
      async () => (await this.db.getRepository(RunEntity).findOneBy({ workflowId, tenantId: ctx.tenantId })) ?? undefined,
    );
    if (run) return run;
    throw new ApiError(
      ErrorCode.SCHEDULE_RUN_NOT_RECORDED,
      `the fire started workflow ${workflowId}, but its run was not recorded within ${TRIGGER_WAIT_MS / 1000} s (are workers running?); do not trigger again, the run appears in GET /v1/runs?trigger=schedule once a worker records it`,
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
    const ran: { scheduled_at: Date }[] = await this.db.query(
      `SELECT scheduled_at FROM runs WHERE schedule_id = $1 AND scheduled_at >= $2 AND scheduled_at <= $3`,
      [s.id, start, end],
    );
    const ranAt = new Set(ran.map((r) => r.scheduled_at.getTime()));
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
      // Runs of the window, and those that were still going at its start (for overlap reasons).
      this.db
        .getRepository(RunEntity)
        .createQueryBuilder('r')
        .where('r.schedule_id = :id AND r.queued_at <= :to AND (r.finished_at IS NULL OR r.finished_at >= :from)', {
          id: s.id,
          from: new Date(from.getTime() - WORKFLOW_CLOSE_MARGIN_MS),
          to: until,
        })
        .orWhere('r.schedule_id = :id AND r.scheduled_at BETWEEN :from AND :to', { id: s.id, from, to: until })
        .getMany(),
      this.db.query(
        `SELECT kind, at, details->>'cause' AS cause FROM schedule_events WHERE schedule_id = $1 AND kind IN ('paused', 'resumed') ORDER BY at, id`,
        [s.id],
      ) as Promise<{ kind: string; at: Date; cause: string | null }[]>,
    ]);
    // More fires than the limit: report the first `limit` of the window, and where to continue.
    const truncated = unexcluded.length >= limit;
    if (truncated) until = unexcluded[unexcluded.length - 1];
    const byTime = new Map(runs.filter((r) => r.scheduledAt).map((r) => [(r.scheduledAt as Date).getTime(), r]));
    // A disabled task holds the schedule paused on its own, beside the schedule's own pause: two states, not one.
    const pausedAt = (t: number, byTask: boolean): boolean => {
      let paused = false;
      for (const e of events) if (e.at.getTime() <= t && (e.cause === 'task_disabled') === byTask) paused = e.kind === 'paused';
      return paused;
    };
    // A run's end is recorded a moment before its workflow closes, and Temporal's scheduler learns of the close after that.
    const overlapping = (t: number): boolean =>
      runs.some(
        (r) =>
          (r.scheduledAt ?? r.queuedAt).getTime() < t && (r.finishedAt === null || r.finishedAt.getTime() + WORKFLOW_CLOSE_MARGIN_MS > t),
      );
    const expectedSet = new Set(expected.map((t) => t.getTime()));
    const records: FireRecord[] = [];
    for (const t of unexcluded) {
      const ms = t.getTime();
      if (ms > until.getTime()) continue;
      const run = byTime.get(ms);
      if (!expectedSet.has(ms)) {
        records.push({
          scheduledAt: t.toISOString(),
          outcome: 'excluded',
          runId: null,
          runStatus: null,
          startedAt: null,
          latenessMs: null,
          reason: 'excluded',
        });
      } else if (run && run.status === 'cancelled' && run.admittedAt === null && run.error?.startsWith('task_disabled:')) {
        // The worker recorded the fire without running it: the task was disabled (see RunRecorder.ensureRun).
        records.push({
          scheduledAt: t.toISOString(),
          outcome: 'missed',
          runId: run.id,
          runStatus: run.status,
          startedAt: null,
          latenessMs: null,
          reason: 'task_disabled',
        });
      } else if (run) {
        records.push({
          scheduledAt: t.toISOString(),
          outcome: 'ran',
          runId: run.id,
          runStatus: run.status,
          startedAt: run.queuedAt.toISOString(),
          latenessMs: run.queuedAt.getTime() - ms,
          reason: null,
        });
      } else if (now - ms > 5_000) {
        const reason = pausedAt(ms, true)
          ? 'task_disabled'
          : pausedAt(ms, false)
            ? 'paused'
            : (s.policies.overlap ?? 'skip') === 'skip' && overlapping(ms)
              ? 'overlap_skip'
              : 'outside_catchup_window';
        records.push({
          scheduledAt: t.toISOString(),
          outcome: 'missed',
          runId: null,
          runStatus: null,
          startedAt: null,
          latenessMs: null,
          reason,
        });
      }
    }
    // Runs started by trigger or backfill at times the spec does not produce are fires too.
    for (const r of runs) {
      const ms = (r.scheduledAt as Date).getTime();
      if (ms < from.getTime() || ms > until.getTime() || unexcluded.some((t) => t.getTime() === ms)) continue;
      records.push({
        scheduledAt: new Date(ms).toISOString(),
        outcome: 'ran',
        runId: r.id,
        runStatus: r.status,
        startedAt: r.queuedAt.toISOString(),
        latenessMs: r.queuedAt.getTime() - ms,
        reason: null,
      });
    }
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
