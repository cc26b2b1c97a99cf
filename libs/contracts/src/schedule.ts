/**
 * How a schedule treats a fire while its previous run is still going (Temporal's overlap policies).
 * Temporal's TERMINATE_OTHER is left out on purpose: a terminated run cannot record its end, so it would
 * stay `running` and hold its tenant's slot; `cancel_other` stops the previous run and records it.
 */
export const OVERLAP_POLICIES = ['skip', 'buffer_one', 'buffer_all', 'cancel_other', 'allow_all'] as const;
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];

/**
 * One calendar rule. Each field is `*`, a number, a name (month, day of
 * week), a range `a-b`, a stepped range `a-b/s`, or a comma-separated list of
 * those. Omitted fields: `second`, `minute`, `hour` default to 0; the date
 * fields default to `*`.
 */
export interface CalendarRule {
  second?: string;
  minute?: string;
  hour?: string;
  dayOfMonth?: string;
  month?: string;
  year?: string;
  dayOfWeek?: string;
  comment?: string;
}

export interface IntervalRule {
  everySeconds: number;
  offsetSeconds?: number;
}

/** When a schedule fires, as the API takes it; all times in `timezone`. */
export interface ScheduleSpecInput {
  /** Cron expressions: 5 fields, or 6 with seconds first. */
  cron?: string[];
  intervals?: IntervalRule[];
  calendars?: CalendarRule[];
  /** Extra calendar rules whose matches never fire. */
  exclude?: CalendarRule[];
  /** Business calendars (POST /v1/calendars) whose days and windows never fire. */
  excludeCalendarIds?: string[];
  /** IANA time zone, e.g. Europe/Berlin; default UTC. */
  timezone?: string;
  startAt?: string;
  endAt?: string;
  /** Each fire is delayed by a random amount up to this. */
  jitterSeconds?: number;
}

export interface SchedulePolicyInput {
  overlap?: OverlapPolicy;
  /** Fires missed by more than this (server down, paused) are dropped, not caught up. */
  catchupWindowSeconds?: number;
  pauseOnFailure?: boolean;
  /** Fire at most this many more times, then stop; null: no limit. */
  remainingActions?: number | null;
}

/** Our default catch-up window: a fire late by more than a minute is reported missed, not run late (Temporal's default is a year). */
export const DEFAULT_CATCHUP_WINDOW_SECONDS = 60;

/** Temporal Schedule id of a product schedule: the deployment's prefix keeps deployments sharing a namespace apart. */
export function temporalScheduleId(prefix: string, scheduleId: string): string {
  return `${prefix}.schedule.${scheduleId}`;
}

/** Search attributes Temporal sets on workflows a schedule starts. */
export const SCHEDULE_SEARCH_ATTRIBUTES = {
  scheduledStartTime: 'TemporalScheduledStartTime',
  scheduledById: 'TemporalScheduledById',
} as const;
