import { zoneOffsetMinutes } from '@task-scheduler/core';
import type { CalendarSpec, ScheduleSpec } from '@temporalio/client';
import { DAYS_OF_WEEK, MONTHS } from '@temporalio/client';
import { TEMPORAL_MAX_YEAR, TEMPORAL_MIN_YEAR, daysInMonth } from './cron-spec';

/**
 * The instants a spec's rules match on the wall clock of its zone (POSIX
 * wall-clock matching), computed here and not by Temporal: an instant
 * matches when its local reading matches a rule, so a local time in a
 * repeated hour matches in both passes and one in a skipped hour never.
 * The preview compares these with the times Temporal will fire, to flag
 * what the engine adds or leaves out.
 */

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

type Field = 'second' | 'minute' | 'hour' | 'dayOfMonth' | 'month' | 'year' | 'dayOfWeek';
const SIZE: Record<Field, number> = {
  second: 60,
  minute: 60,
  hour: 24,
  dayOfMonth: 32,
  month: 13,
  year: TEMPORAL_MAX_YEAR + 1,
  dayOfWeek: 8,
};
/** Temporal's defaults for an omitted field. */
const DEFAULT_ZERO: readonly Field[] = ['second', 'minute', 'hour'];

interface CompiledRule {
  sets: Record<Field, Uint8Array>;
  seconds: number[];
  minutes: number[];
  hours: number[];
}

function unitValue(field: Field, v: unknown): number {
  if (typeof v === 'number') return v;
  if (field === 'month') return MONTHS.indexOf(v as (typeof MONTHS)[number]) + 1;
  if (field === 'dayOfWeek') return DAYS_OF_WEEK.indexOf(v as (typeof DAYS_OF_WEEK)[number]);
  return Number(v);
}

function compile(rule: CalendarSpec): CompiledRule {
  const sets = {} as Record<Field, Uint8Array>;
  for (const field of Object.keys(SIZE) as Field[]) {
    const set = new Uint8Array(SIZE[field]);
    const value = rule[field] as unknown;
    if (field === 'year' && (value === '*' || value === undefined)) set.fill(1, TEMPORAL_MIN_YEAR, TEMPORAL_MAX_YEAR + 1);
    else if (value === '*' || (value === undefined && !DEFAULT_ZERO.includes(field))) set.fill(1);
    else if (value === undefined) set[0] = 1;
    else {
      for (const r of Array.isArray(value) ? value : [value]) {
        type Loose = { start: unknown; end?: unknown; step?: number };
        const range: Loose = typeof r === 'object' && r !== null ? (r as Loose) : { start: r };
        const start = unitValue(field, range.start);
        const end = range.end === undefined ? start : unitValue(field, range.end);
        const step = range.step && range.step > 0 ? range.step : 1;
        for (let v = start; v <= Math.max(start, end); v += step) if (v >= 0 && v < SIZE[field]) set[v] = 1;
      }
    }
    if (field === 'dayOfWeek' && set[7]) set[0] = 1;
    sets[field] = set;
  }
  const listOf = (set: Uint8Array): number[] => [...set.keys()].filter((i) => set[i]);
  return { sets, seconds: listOf(sets.second), minutes: listOf(sets.minute), hours: listOf(sets.hour) };
}

const dayMatches = (r: CompiledRule, y: number, m: number, d: number, dow: number): boolean =>
  y < SIZE.year && !!r.sets.year[y] && !!r.sets.month[m] && !!r.sets.dayOfMonth[d] && !!r.sets.dayOfWeek[dow];

function wallMatches(rules: CompiledRule[], wall: number): boolean {
  const t = new Date(wall);
  const y = t.getUTCFullYear();
  return rules.some(
    (r) =>
      dayMatches(r, y, t.getUTCMonth() + 1, t.getUTCDate(), t.getUTCDay()) &&
      !!r.sets.hour[t.getUTCHours()] &&
      !!r.sets.minute[t.getUTCMinutes()] &&
      !!r.sets.second[t.getUTCSeconds()],
  );
}

function durationMs(d: unknown): number {
  if (typeof d === 'number') return d;
  const m = /^(\d+)s$/.exec(String(d));
  if (!m) throw new Error(`unexpected duration ${String(d)}`);
  return Number(m[1]) * 1000;
}

export interface SpecMatchOptions {
  /** Give up (return null) past this many times. */
  maxTimes?: number;
}

/**
 * The instants in [fromMs, toMs] that `spec` matches, sorted: calendar rules
 * on the wall clock of `spec.timezone`, intervals on the epoch (intervals do
 * not depend on the zone), minus exclusions (skip rules, also on the wall
 * clock), within startAt/endAt. Null when the spec holds something this
 * does not model (Temporal cron strings, jitter) or more than `maxTimes` times.
 */
export function specMatchingTimes(spec: ScheduleSpec, fromMs: number, toMs: number, opts: SpecMatchOptions = {}): number[] | null {
  const max = opts.maxTimes ?? 200_000;
  if ((spec.cronExpressions?.length ?? 0) > 0 || spec.jitter) return null;
  const zone = spec.timezone ?? 'UTC';
  const lo = Math.max(fromMs, spec.startAt ? new Date(spec.startAt).getTime() : -Infinity);
  const hi = Math.min(toMs, spec.endAt ? new Date(spec.endAt).getTime() : Infinity);
  const out = new Set<number>();
  if (hi < lo) return [];
  const rules = (spec.calendars ?? []).map(compile);
  const skip = (spec.skip ?? []).map(compile);
  const offset = (ms: number): number => zoneOffsetMinutes(zone, new Date(ms)) * MINUTE_MS;
  const add = (ms: number): boolean => {
    if (ms < lo || ms > hi) return true;
    if (skip.length && wallMatches(skip, ms + offset(ms))) return true;
    out.add(ms);
    return out.size <= max;
  };

  for (const iv of spec.intervals ?? []) {
    const every = durationMs(iv.every);
    const phase = iv.offset === undefined ? 0 : durationMs(iv.offset);
    for (let t = Math.ceil((lo - phase) / every) * every + phase; t <= hi; t += every) if (!add(t)) return null;
  }

  if (rules.length) {
    // Local days from the one `lo` falls on to the one `hi` falls on; a day's wall times map to 0, 1 or 2 instants.
    const firstDay = Math.floor((lo + Math.min(offset(lo), offset(lo - DAY_MS))) / DAY_MS) * DAY_MS - DAY_MS;
    const lastDay = Math.floor((hi + Math.max(offset(hi), offset(hi + DAY_MS))) / DAY_MS) * DAY_MS + DAY_MS;
    for (let day = firstDay; day <= lastDay; day += DAY_MS) {
      const t = new Date(day);
      const [y, m, d, dow] = [t.getUTCFullYear(), t.getUTCMonth() + 1, t.getUTCDate(), t.getUTCDay()];
      if (d > daysInMonth(m, y)) continue;
      const today = rules.filter((r) => dayMatches(r, y, m, d, dow));
      if (today.length === 0) continue;
      // Offsets a wall time of this day can have; one offset all day is the common case.
      const before = offset(day - DAY_MS);
      const after = offset(day + 2 * DAY_MS);
      for (const r of today) {
        for (const h of r.hours) {
          for (const mi of r.minutes) {
            for (const s of r.seconds) {
              const wall = day + ((h * 60 + mi) * 60 + s) * 1000;
              for (const o of before === after ? [before] : [before, after]) {
                const ms = wall - o;
                if ((before === after || offset(ms) === o) && !add(ms)) return null;
              }
            }
          }
        }
      }
    }
  }
  return [...out].sort((a, b) => a - b);
}
