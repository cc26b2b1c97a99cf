import { Injectable } from '@nestjs/common';
import { CalendarEntity } from '@task-scheduler/db';
import type { WeeklyWindow } from '@task-scheduler/db';
import { DataSource, IsNull } from 'typeorm';
import type { EntityManager } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import type { RequestContext } from '../auth/request-context';
import { ApiError, ErrorCode } from '../common/api-error';
import { isUniqueViolation } from '../common/db-errors';
import { isUuid, keysetPage } from '../common/pagination';
import type { Page } from '../common/pagination';
import { SchedulesService } from '../schedules/schedules.service';
import type { CreateCalendarDto, UpdateCalendarDto } from './dtos/calendar.dto';

function checkedHolidays(days: string[] | undefined): string[] {
  const out = [...new Set(days ?? [])].sort();
  out.forEach((d, i) => {
    const parsed = new Date(`${d}T00:00:00Z`);
    if (Number.isNaN(parsed.getTime()) || parsed.toISOString().slice(0, 10) !== d) {
      throw new ApiError(ErrorCode.VALIDATION_FAILED, `holidays: ${d} is not a calendar date`, [
        { field: `holidays[${i}]`, message: `${d} is not a calendar date` },
      ]);
    }
  });
  return out;
}

function checkedWindows(windows: WeeklyWindow[] | undefined): WeeklyWindow[] {
  return (windows ?? []).map((w, i) => {
    if (w.end <= w.start) {
      const message = `window ${w.start}-${w.end} must end after it starts (it cannot cross midnight: split it in two days)`;
      throw new ApiError(ErrorCode.VALIDATION_FAILED, `weeklyWindows: ${message}`, [{ field: `weeklyWindows[${i}].end`, message }]);
    }
    return { dayOfWeek: w.dayOfWeek, start: w.start, end: w.end };
  });
}

/** Business calendars of one tenant; a change reaches every schedule excluding the calendar in the same transaction. */
@Injectable()
export class CalendarsService {
  constructor(
    private readonly db: DataSource,
    private readonly audit: AuditService,
    private readonly schedules: SchedulesService,
  ) {}

  async create(ctx: RequestContext, dto: CreateCalendarDto): Promise<CalendarEntity> {
    const holidays = checkedHolidays(dto.holidays);
    const weeklyWindows = checkedWindows(dto.weeklyWindows);
    return this.db.transaction(async (tx) => {
      const repo = tx.getRepository(CalendarEntity);
      let cal: CalendarEntity;
      try {
        cal = await repo.save(
          repo.create({
            tenantId: ctx.tenantId,
            name: dto.name,
            description: dto.description ?? null,
            holidays,
            weeklyWindows,
            version: 1,
            deletedAt: null,
          }),
        );
      } catch (err) {
        if (isUniqueViolation(err))
          throw new ApiError(ErrorCode.CALENDAR_NAME_TAKEN, `a calendar named ${JSON.stringify(dto.name)} already exists`);
        throw err;
      }
      await this.audit.record(tx, ctx, { action: 'calendar.create', targetType: 'calendar', targetId: cal.id });
      return cal;
    });
  }

  async get(ctx: RequestContext, id: string, tx: EntityManager = this.db.manager): Promise<CalendarEntity> {
    const cal = isUuid(id) ? await tx.getRepository(CalendarEntity).findOneBy({ id, tenantId: ctx.tenantId, deletedAt: IsNull() }) : null;
    if (!cal) throw new ApiError(ErrorCode.CALENDAR_NOT_FOUND, `calendar ${id} does not exist`);
    return cal;
  }

  list(ctx: RequestContext, limit: number, cursor?: string): Promise<Page<CalendarEntity>> {
    const qb = this.db
      .getRepository(CalendarEntity)
      .createQueryBuilder('c')
      .where('c.tenant_id = :tenantId', { tenantId: ctx.tenantId })
      .andWhere('c.deleted_at IS NULL');
    return keysetPage(qb, 'c', limit, cursor);
  }

  /** Changes the calendar and, in the same transaction, every schedule excluding it (Temporal included). */
  async update(ctx: RequestContext, id: string, dto: UpdateCalendarDto): Promise<{ calendar: CalendarEntity; schedulesUpdated: number }> {
    const holidays = dto.holidays ? checkedHolidays(dto.holidays) : undefined;
    const weeklyWindows = dto.weeklyWindows ? checkedWindows(dto.weeklyWindows) : undefined;
    return this.db.transaction(async (tx) => {
      const cal = await this.get(ctx, id, tx);
      const next: CalendarEntity = {
        ...cal,
        ...(dto.description !== undefined ? { description: dto.description } : {}),
        ...(holidays ? { holidays } : {}),
        ...(weeklyWindows ? { weeklyWindows } : {}),
        version: cal.version + 1,
      };
      const users = await this.schedules.lockCalendarUsers(tx, ctx.tenantId, cal.id);
      await tx.getRepository(CalendarEntity).save(next);
      await this.audit.record(tx, ctx, { action: 'calendar.update', targetType: 'calendar', targetId: cal.id });
      const schedulesUpdated = await this.schedules.resyncCalendarUsers(tx, users, cal.id);
      return { calendar: await tx.getRepository(CalendarEntity).findOneByOrFail({ id: cal.id }), schedulesUpdated };
    });
  }

  async remove(ctx: RequestContext, id: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      const cal = await this.get(ctx, id, tx);
      // Schedules first (the order schedule changes lock in), then the calendar row: that waits for a schedule
      // create holding the calendar, whose new row the second look then sees.
      const inUse = await this.schedules.lockCalendarUsers(tx, ctx.tenantId, cal.id);
      if (inUse.length === 0) await tx.getRepository(CalendarEntity).update({ id: cal.id }, { deletedAt: new Date() });
      const users = inUse.length > 0 ? inUse : await this.schedules.lockCalendarUsers(tx, ctx.tenantId, cal.id);
      if (users.length > 0) {
        throw new ApiError(
          ErrorCode.CALENDAR_IN_USE,
          `calendar ${cal.id} is excluded by ${users.length} schedule(s); remove it from them first`,
          users.map((s) => ({ message: `schedule ${s.id} excludes this calendar`, scheduleId: s.id })),
        );
      }
      await this.audit.record(tx, ctx, { action: 'calendar.delete', targetType: 'calendar', targetId: cal.id });
    });
  }
}
