import type { AppConfig } from '@task-scheduler/config';
import { DEFAULT_CATCHUP_WINDOW_SECONDS, taskQueues } from '@task-scheduler/contracts';
import type {
  CalendarRule,
  OverlapPolicy,
  PipelineRunInput,
  ScheduleSpecInput,
  ShellSpec,
  TenantShellPolicy,
} from '@task-scheduler/contracts';
import type { CalendarEntity, PipelineEntity, ScheduleEntity, TaskEntity } from '@task-scheduler/db';
import { ScheduleOverlapPolicy } from '@temporalio/client';
import type { CalendarSpec, ScheduleOptions, ScheduleSpec, ScheduleUpdateOptions } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { SEARCH_ATTRIBUTE_KEYS as SA } from '../common/temporal';
import { ApiError, ErrorCode, fieldError } from '../common/api-error';
import { egressForbidden, runInputOf } from '../runs/run-input';
import { TEMPORAL_MAX_YEAR, TEMPORAL_MIN_YEAR, cronCalendarsOf, runsOf, yearRanges } from './cron-spec';
import type { CronCalendar } from './cron-spec';

const MONTHS = [
  'JANUARY',
  'FEBRUARY',
  'MARCH',
  'APRIL',
  'MAY',
  'JUNE',
  'JULY',
  'AUGUST',
  'SEPTEMBER',
  'OCTOBER',
  'NOVEMBER',
  'DECEMBER',
] as const;
const DAYS = ['SUNDAY', 'MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY'] as const;

const OVERLAP: Record<OverlapPolicy, ScheduleOverlapPolicy> = {
  skip: ScheduleOverlapPolicy.SKIP,
  buffer_one: ScheduleOverlapPolicy.BUFFER_ONE,
  buffer_all: ScheduleOverlapPolicy.BUFFER_ALL,
  cancel_other: ScheduleOverlapPolicy.CANCEL_OTHER,
  allow_all: ScheduleOverlapPolicy.ALLOW_ALL,
};

export function overlapOf(p: OverlapPolicy | undefined): ScheduleOverlapPolicy {
  return OVERLAP[p ?? 'skip'];
}

type CalendarField = Exclude<keyof CalendarRule, 'comment'>;
const FIELD_BOUNDS: Record<CalendarField, { min: number; max: number; names?: readonly string[] }> = {
  second: { min: 0, max: 59 },
  minute: { min: 0, max: 59 },
  hour: { min: 0, max: 23 },
  dayOfMonth: { min: 1, max: 31 },
  month: { min: 1, max: 12, names: MONTHS },
  // Temporal's calendars know these years only (it refuses others without naming the field).
  year: { min: TEMPORAL_MIN_YEAR, max: TEMPORAL_MAX_YEAR },
  dayOfWeek: { min: 0, max: 6, names: DAYS },
};

const invalidCalendar = (field: string, message: string): ApiError => fieldError(ErrorCode.SCHEDULE_INVALID_CALENDAR, field, message);

/** `*`, `5`, `MON`, `1-5`, `0-59/15`, `1,15,30` … → Temporal ranges. */
function parseField(field: CalendarField, text: string, path: string): CalendarSpec[CalendarField] {
  const t = text.trim();
  if (t === '*') return '*';
  const bounds = FIELD_BOUNDS[field];
  const value = (v: string): number => {
    const upper = v.trim().toUpperCase();
    const byName = bounds.names?.findIndex((n) => n === upper || n.slice(0, 3) === upper) ?? -1;
    const n = byName >= 0 ? byName + (field === 'month' ? 1 : 0) : /^\d+$/.test(upper) ? Number(upper) : NaN;
    if (!Number.isInteger(n) || n < bounds.min || n > bounds.max) {
      throw invalidCalendar(
        path,
        `${JSON.stringify(v)} is not a valid ${field} (${bounds.min}-${bounds.max}${bounds.names ? ' or a name' : ''})`,
      );
    }
    return n;
  };
  const named = (n: number): never => (field === 'month' ? MONTHS[n - 1] : field === 'dayOfWeek' ? DAYS[n] : n) as never;
  return t.split(',').map((part) => {
    const m = /^([^-/]+)(?:-([^/]+))?(?:\/(\d+))?$/.exec(part.trim());
    if (!m) throw invalidCalendar(path, `${JSON.stringify(part)} is not a value, a range a-b or a stepped range a-b/s`);
    // As in cron: `*/s` steps over the whole field, `a/s` from a to its end.
    const stepped = m[3] !== undefined && m[2] === undefined;
    const start = m[1].trim() === '*' && stepped ? bounds.min : value(m[1]);
    const end = m[2] !== undefined ? value(m[2]) : stepped ? bounds.max : start;
    if (end < start) throw invalidCalendar(path, `range ${part} ends before it starts`);
    const step = m[3] !== undefined ? Number(m[3]) : 1;
    if (step < 1) throw invalidCalendar(path, `step of ${part} must be at least 1`);
    return { start: named(start), end: named(end), step } as never;
  }) as CalendarSpec[CalendarField];
}

/** A calendar rule as Temporal takes it; `path` names the field in errors (e.g. `calendars[0]`). */
export function calendarSpecOf(rule: CalendarRule, path: string): CalendarSpec {
  const spec: CalendarSpec = { comment: rule.comment };
  for (const field of Object.keys(FIELD_BOUNDS) as CalendarField[]) {
    const text = rule[field];
    if (text !== undefined) (spec as Record<string, unknown>)[field] = parseField(field, text, `${path}.${field}`);
  }
  return spec;
}

/**
 * How the spec is encoded for Temporal, kept in the action's memo: 2 = crons
 * sent as structured calendars (cron-spec.ts). Schedules saved with Temporal
 * cron strings (where `MON#2` meant every Monday) are re-sent by the reconciler.
 */
export const SPEC_ENCODING = 2;

/** A cron rule (from cron-spec) as a Temporal structured calendar. */
function cronCalendarSpecOf(c: CronCalendar, comment: string): CalendarSpec {
  const numbers = (values: number[]) => runsOf(values).map((r) => ({ start: r.start, end: r.end, step: 1 }));
  return {
    second: numbers(c.second),
    minute: numbers(c.minute),
    hour: numbers(c.hour),
    dayOfMonth: c.dayOfMonth === '*' ? '*' : numbers(c.dayOfMonth),
    month: runsOf(c.month).map((r) => ({ start: MONTHS[r.start - 1], end: MONTHS[r.end - 1], step: 1 })),
    dayOfWeek: c.dayOfWeek === '*' ? '*' : runsOf(c.dayOfWeek).map((r) => ({ start: DAYS[r.start], end: DAYS[r.end], step: 1 })),
    year: c.year ? yearRanges(c.year) : '*',
    comment,
  };
}

/** Every cron expression as structured calendars (see cron-spec.ts); `path` names the field in errors. */
export function cronSpecsOf(cron: readonly string[], path: string): CalendarSpec[] {
  return cron.flatMap((expr, i) => cronCalendarsOf(expr, `${path}cron[${i}]`).map((c) => cronCalendarSpecOf(c, `cron: ${expr.trim()}`)));
}

const minutes = (hhmm: string): number => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/**
 * Business calendars as Temporal skip rules: each holiday is its whole day;
 * a weekly window [start, end) is split into whole hours and the partial
 * hours at its edges. Read in the schedule's time zone.
 */
export function skipSpecsOf(calendars: readonly CalendarEntity[]): CalendarSpec[] {
  const out: CalendarSpec[] = [];
  for (const cal of calendars) {
    for (const day of cal.holidays) {
      const [y, m, d] = day.split('-').map(Number);
      out.push({
        year: y,
        month: MONTHS[m - 1],
        dayOfMonth: d,
        hour: '*',
        minute: '*',
        second: '*',
        comment: `${cal.name}: ${day}`,
      });
    }
    for (const w of cal.weeklyWindows) {
      const from = minutes(w.start);
      const to = minutes(w.end);
      const dayOfWeek = DAYS[w.dayOfWeek];
      const comment = `${cal.name}: ${dayOfWeek} ${w.start}-${w.end}`;
      const piece = (hourStart: number, hourEnd: number, minStart: number, minEnd: number): void => {
        if (hourEnd < hourStart || minEnd < minStart) return;
        out.push({
          dayOfWeek,
          hour: { start: hourStart, end: hourEnd },
          minute: minStart === 0 && minEnd === 59 ? '*' : { start: minStart, end: minEnd },
          second: '*',
          comment,
        });
      };
      const [h1, m1, h2, m2] = [Math.floor(from / 60), from % 60, Math.floor(to / 60), to % 60];
      if (h1 === h2) piece(h1, h1, m1, m2 - 1);
      else {
        piece(h1, h1, m1, 59);
        piece(h1 + 1, h2 - 1, 0, 59);
        if (h2 < 24) piece(h2, h2, 0, m2 - 1);
      }
    }
  }
  return out;
}

/** The Temporal spec of a schedule's timing (with or without its exclusions). */
export function temporalSpecOf(
  spec: Omit<ScheduleSpecInput, 'excludeCalendarIds'>,
  calendars: readonly CalendarEntity[],
  opts: { withExclusions?: boolean; path?: string } = {},
): ScheduleSpec {
  const withExclusions = opts.withExclusions ?? true;
  const at = opts.path ? `${opts.path}.` : '';
  return {
    // Crons are read here, not by Temporal, whose reader drops `#…` as a comment and refuses `L`.
    intervals: (spec.intervals ?? []).map((i) => ({ every: `${i.everySeconds}s`, offset: `${i.offsetSeconds ?? 0}s` })),
    calendars: [...cronSpecsOf(spec.cron ?? [], at), ...(spec.calendars ?? []).map((c, i) => calendarSpecOf(c, `${at}calendars[${i}]`))],
    skip: withExclusions ? [...(spec.exclude ?? []).map((c, i) => calendarSpecOf(c, `${at}exclude[${i}]`)), ...skipSpecsOf(calendars)] : [],
    startAt: spec.startAt ? new Date(spec.startAt) : undefined,
    endAt: spec.endAt ? new Date(spec.endAt) : undefined,
    jitter: spec.jitterSeconds ? `${spec.jitterSeconds}s` : undefined,
    timezone: spec.timezone ?? 'UTC',
  };
}

/** What each fire starts: a run of the task, or a run of the pipeline (its version of the moment of the fire). */
export type DesiredTarget = { kind: 'task'; task: TaskEntity } | { kind: 'pipeline'; pipeline: PipelineEntity };

export interface DesiredSchedule {
  schedule: ScheduleEntity;
  target: DesiredTarget;
  calendars: readonly CalendarEntity[];
  /** The tenant is suspended: the schedule stays paused in Temporal whatever its own state. */
  tenantSuspended: boolean;
  /** The tenant's shell policy: fires run with the limits it allows. */
  shellPolicy: TenantShellPolicy | null;
}

/** Note Temporal shows on a schedule of an egress task whose tenant may no longer use egress. */
export const EGRESS_FORBIDDEN_NOTE = 'paused: network egress is forbidden for this tenant';

/** Note Temporal shows on a schedule paused because its tenant is suspended. */
export const TENANT_SUSPENDED_NOTE = 'paused: tenant suspended';

/** Note Temporal shows on a schedule held paused because its task is disabled. */
export const TASK_DISABLED_NOTE = 'paused: task disabled';

export function effectivePause(d: DesiredSchedule): { paused: boolean; note: string | undefined } {
  if (d.tenantSuspended) return { paused: true, note: TENANT_SUSPENDED_NOTE };
  // A pipeline's steps are checked when each starts (a disabled task's step fails), not by pausing the schedule.
  if (d.target.kind === 'task') {
    if (!d.target.task.enabled) return { paused: true, note: TASK_DISABLED_NOTE };
    if (egressForbidden(d.target.task.spec as ShellSpec, d.shellPolicy)) return { paused: true, note: EGRESS_FORBIDDEN_NOTE };
  }
  return { paused: d.schedule.paused, note: d.schedule.paused ? (d.schedule.pauseNote ?? 'paused') : undefined };
}

type StartAction = Omit<ScheduleUpdateOptions, 'state'>['action'];

/**
 * The workflow each fire starts. Its input is the same for every fire, so it names no run: the workflow
 * draws the run id and records the run (with the fire's time) first thing.
 */
function actionOf(config: AppConfig, d: DesiredSchedule): StartAction {
  const { schedule, target } = d;
  const queues = taskQueues(config.TASK_QUEUE_PREFIX);
  const common = {
    type: 'startWorkflow' as const,
    taskQueue: queues.workflows,
    // Temporal appends each fire's time to this id.
    workflowId: `schedule-${schedule.id}`,
    priority: { fairnessKey: schedule.tenantId },
  };
  // The reconciler compares the memo with the rows to find schedules Temporal holds an old version of.
  // `apiPaused`: the pause state the API itself wrote, beside it. Temporal's UI, CLI and pauseOnFailure change
  // the state but not the memo, so a state that differs from it was changed in Temporal (and is adopted), while
  // one equal to it that the row does not share comes from an API change whose commit failed (and is reverted).
  const memo = { scheduleVersion: schedule.version, specEncoding: SPEC_ENCODING, apiPaused: effectivePause(d).paused };
  if (target.kind === 'pipeline') {
    const { pipeline } = target;
    // No pipeline version here: the workflow runs the version current at the fire, so a pipeline change needs no resync.
    const input: PipelineRunInput = {
      tenantId: pipeline.tenantId,
      pipelineId: pipeline.id,
      scheduleId: schedule.id,
      params: schedule.params ?? {},
      trigger: 'schedule',
      httpTaskQueue: queues.http,
    };
    return {
      ...common,
      workflowType: 'pipelineRunWorkflow',
      args: [input],
      // The workflow adds PipelineRunId once it has drawn the run's id.
      typedSearchAttributes: new TypedSearchAttributes([
        { key: SA.tenantId, value: pipeline.tenantId },
        { key: SA.trigger, value: 'schedule' },
      ]),
      memo: { ...memo, pipelineName: pipeline.name },
    };
  }
  const { task } = target;
  return {
    ...common,
    workflowType: 'taskRunWorkflow',
    args: [runInputOf(config, task, { trigger: 'schedule', scheduleId: schedule.id, shellPolicy: d.shellPolicy })],
    typedSearchAttributes: new TypedSearchAttributes([
      { key: SA.tenantId, value: task.tenantId },
      { key: SA.taskId, value: task.id },
      { key: SA.trigger, value: 'schedule' },
    ]),
    memo: { ...memo, taskVersion: task.version, taskName: task.name },
  };
}

/** Everything but the id and the creation-only parts, shared by create and update. */
function body(config: AppConfig, d: DesiredSchedule): Omit<ScheduleUpdateOptions, 'state'> {
  const { schedule } = d;
  return {
    spec: temporalSpecOf(schedule.spec, d.calendars),
    action: actionOf(config, d),
    policies: {
      overlap: overlapOf(schedule.policies.overlap),
      catchupWindow: `${schedule.policies.catchupWindowSeconds ?? DEFAULT_CATCHUP_WINDOW_SECONDS}s`,
      pauseOnFailure: schedule.policies.pauseOnFailure ?? false,
    },
  };
}

export function createOptionsOf(config: AppConfig, d: DesiredSchedule): ScheduleOptions {
  const { remainingActions } = d.schedule.policies;
  return {
    scheduleId: d.schedule.temporalScheduleId,
    ...body(config, d),
    typedSearchAttributes: new TypedSearchAttributes([
      { key: SA.tenantId, value: d.schedule.tenantId },
      ...(d.target.kind === 'task' ? [{ key: SA.taskId, value: d.target.task.id }] : []),
    ]),
    state: { ...effectivePause(d), ...(remainingActions != null ? { remainingActions } : {}) },
  };
}

/** Update options; `remainingActions` is only sent when the row says so (Temporal counts it down between updates). */
export function updateOptionsOf(config: AppConfig, d: DesiredSchedule, resetRemaining: boolean, current?: number): ScheduleUpdateOptions {
  const { remainingActions } = d.schedule.policies;
  const remaining = resetRemaining ? remainingActions : current;
  return { ...body(config, d), state: { ...effectivePause(d), ...(remaining != null ? { remainingActions: remaining } : {}) } };
}
