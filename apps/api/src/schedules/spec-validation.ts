import type { ScheduleSpecInput } from '@task-scheduler/contracts';
import { isValidTimeZone } from '@task-scheduler/core';
import { ErrorCode, fieldError } from '../common/api-error';
import type { ScheduleSpecDto } from './dtos/schedule.dto';
import { temporalSpecOf } from './schedule-translator';

/**
 * Checks a spec field by field, with codes that name the field; returns the
 * spec as stored. Cron expressions and calendar rules are read by the same
 * code that translates them for Temporal, so what passes here is what fires.
 */
export function validateScheduleSpec(spec: ScheduleSpecDto, path = 'spec'): Omit<ScheduleSpecInput, 'excludeCalendarIds'> {
  const stored: Omit<ScheduleSpecInput, 'excludeCalendarIds'> = {
    ...(spec.cron?.length ? { cron: spec.cron.map((c) => c.trim()) } : {}),
    ...(spec.intervals?.length
      ? { intervals: spec.intervals.map((i) => ({ everySeconds: i.everySeconds, offsetSeconds: i.offsetSeconds ?? 0 })) }
      : {}),
    ...(spec.calendars?.length ? { calendars: spec.calendars.map((c) => ({ ...c })) } : {}),
    ...(spec.exclude?.length ? { exclude: spec.exclude.map((c) => ({ ...c })) } : {}),
    timezone: spec.timezone ?? 'UTC',
    ...(spec.startAt ? { startAt: new Date(spec.startAt).toISOString() } : {}),
    ...(spec.endAt ? { endAt: new Date(spec.endAt).toISOString() } : {}),
    ...(spec.jitterSeconds ? { jitterSeconds: spec.jitterSeconds } : {}),
  };
  if (!stored.cron && !stored.intervals && !stored.calendars) {
    throw fieldError(ErrorCode.SCHEDULE_SPEC_EMPTY, path, 'give at least one of cron, intervals or calendars');
  }
  stored.intervals?.forEach((iv, i) => {
    // Temporal refuses it as "phase cannot be greater than Interval", naming no field.
    if ((iv.offsetSeconds ?? 0) >= iv.everySeconds) {
      throw fieldError(
        ErrorCode.SCHEDULE_INVALID_INTERVAL,
        `${path}.intervals[${i}].offsetSeconds`,
        `offsetSeconds (${iv.offsetSeconds}) must be less than everySeconds (${iv.everySeconds})`,
      );
    }
  });
  if (!isValidTimeZone(stored.timezone as string)) {
    throw fieldError(
      ErrorCode.SCHEDULE_INVALID_TIMEZONE,
      `${path}.timezone`,
      `${JSON.stringify(stored.timezone)} is not an IANA time zone (e.g. Europe/Berlin)`,
    );
  }
  if (stored.startAt && stored.endAt && Date.parse(stored.endAt) <= Date.parse(stored.startAt)) {
    throw fieldError(ErrorCode.SCHEDULE_INVALID_RANGE, `${path}.endAt`, 'endAt must be after startAt');
  }
  // Reads every cron expression, calendar and exclusion rule; errors name the field (`spec.cron[0]`, `spec.calendars[1].year`).
  temporalSpecOf(stored, [], { path });
  return stored;
}
