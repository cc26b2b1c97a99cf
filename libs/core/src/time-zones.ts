/*
 * IANA time zones through the runtime's Intl data: validity, UTC offsets, local
 * wall-clock strings and the daylight-saving transitions of a range. Pure: no
 * I/O, so the API and tests share one reading of a zone.
 */

/**
 * A change of a zone's UTC offset (a daylight-saving switch, or a change of
 * standard time).
 *
 * - `gap`: clocks jump forward; local wall times in [localStart, localEnd) do not exist that day.
 * - `overlap`: clocks fall back; local wall times in [localStart, localEnd) happen twice,
 *   first at `offsetBefore`, then at `offsetAfter`.
 */
export interface DstTransition {
  /** The first instant with the new offset, UTC ISO 8601 (e.g. `2026-03-29T01:00:00.000Z`). */
  at: string;
  kind: 'gap' | 'overlap';
  /** Offset before the change, `+01:00`. */
  offsetBefore: string;
  offsetAfter: string;
  /** Local wall time the affected range starts at, `2026-03-29T02:00`. */
  localStart: string;
  /** Local wall time the affected range ends at (exclusive), `2026-03-29T03:00`. */
  localEnd: string;
}

const MINUTE_MS = 60_000;
/** Coarse step of the transition scan: shorter than any pair of transitions that cancel each other out. */
const SCAN_STEP_MS = 6 * 60 * MINUTE_MS;

const formatters = new Map<string, Intl.DateTimeFormat>();

/** One formatter per zone: building one costs far more than formatting with it. */
function formatterOf(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(zone, f);
  }
  return f;
}

interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const EN_US = /^(\d{2})\/(\d{2})\/(\d{4}), (\d{2}):(\d{2}):(\d{2})$/;

/** Local wall-clock fields of an instant; `format` + a regex is several times faster than `formatToParts`. */
function wallClock(zone: string, ms: number): WallClock {
  const f = formatterOf(zone);
  const m = EN_US.exec(f.format(ms));
  if (m) {
    return { year: +m[3], month: +m[1], day: +m[2], hour: +m[4], minute: +m[5], second: +m[6] };
  }
  const parts: Record<string, number> = {};
  for (const p of f.formatToParts(ms)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  return { year: parts.year, month: parts.month, day: parts.day, hour: parts.hour, minute: parts.minute, second: parts.second };
}

function offsetMinutesAt(zone: string, ms: number): number {
  const w = wallClock(zone, ms);
  const localAsUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return Math.round((localAsUtc - Math.floor(ms / 1000) * 1000) / MINUTE_MS);
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** `+01:00`, `-04:00`, `+10:30`, `+00:00`. */
function offsetText(minutes: number): string {
  const abs = Math.abs(minutes);
  return `${minutes < 0 ? '-' : '+'}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** `2026-03-29T02:00` of an instant shifted by an offset, read as UTC fields. */
function localMinuteText(ms: number, offsetMinutes: number): string {
  return new Date(ms + offsetMinutes * MINUTE_MS).toISOString().slice(0, 16);
}

/**
 * Whether `zone` is an IANA zone name the runtime knows, spelled exactly
 * (`Europe/Berlin`, `UTC`). Intl accepts names in any letter case, while
 * Temporal's server loads zone files by exact name, so a name Intl only
 * recognises after fixing its case is refused.
 */
export function isValidTimeZone(zone: string): boolean {
  if (typeof zone !== 'string' || zone.length === 0 || zone.length > 64) return false;
  let resolved: string;
  try {
    resolved = new Intl.DateTimeFormat('en-US', { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    return false;
  }
  if (resolved === zone) return true;
  // An alias (US/Pacific → America/Los_Angeles) in its exact spelling: Intl also takes `us/pacific`, Temporal does not.
  return /^[A-Z][A-Za-z0-9_+-]*(\/[A-Z0-9][A-Za-z0-9_+-]*)*$/.test(zone) && resolved.toLowerCase() !== zone.toLowerCase();
}

/** The zone's UTC offset in minutes at `date` (east positive: Berlin in summer is 120). */
export function zoneOffsetMinutes(zone: string, date: Date): number {
  return offsetMinutesAt(zone, date.getTime());
}

/**
 * The instant as local wall-clock time in `zone` with its offset,
 * `2026-03-29T03:30:00+02:00` (milliseconds only when there are some).
 */
export function localIsoString(date: Date, zone: string): string {
  const ms = date.getTime();
  const offset = offsetMinutesAt(zone, ms);
  const local = new Date(ms + offset * MINUTE_MS).toISOString();
  const millis = local.slice(19, 23);
  return `${local.slice(0, 19)}${millis === '.000' ? '' : millis}${offsetText(offset)}`;
}

/**
 * The offset changes of `zone` in [from, to], in order. Scans in 6-hour steps
 * and binary-searches the minute of each change, so decades take a few
 * tens of milliseconds.
 */
export function dstTransitions(zone: string, from: Date, to: Date): DstTransition[] {
  const out: DstTransition[] = [];
  const start = from.getTime();
  const end = to.getTime();
  if (!(end >= start)) return out;
  // One millisecond early, so a change exactly at `from` is seen as one.
  let lo = start - 1;
  let loOffset = offsetMinutesAt(zone, lo);
  while (lo < end) {
    const hi = Math.min(lo + SCAN_STEP_MS, end);
    const hiOffset = offsetMinutesAt(zone, hi);
    if (hiOffset !== loOffset) {
      // Offsets change on whole UTC minutes: search the minute, keeping offset(a) old and offset(b) new.
      let a = Math.floor(lo / MINUTE_MS);
      let b = Math.ceil(hi / MINUTE_MS);
      while (b - a > 1) {
        const mid = Math.floor((a + b) / 2);
        if (offsetMinutesAt(zone, mid * MINUTE_MS) === loOffset) a = mid;
        else b = mid;
      }
      const at = b * MINUTE_MS;
      const after = offsetMinutesAt(zone, at);
      const gap = after > loOffset;
      if (at >= start && at <= end) {
        out.push({
          at: new Date(at).toISOString(),
          kind: gap ? 'gap' : 'overlap',
          offsetBefore: offsetText(loOffset),
          offsetAfter: offsetText(after),
          localStart: localMinuteText(at, gap ? loOffset : after),
          localEnd: localMinuteText(at, gap ? after : loOffset),
        });
      }
    }
    lo = hi;
    loOffset = hiOffset;
  }
  return out;
}
