import { ApiError, ErrorCode } from '../common/api-error';

/**
 * Cron expressions read by the product itself and turned into calendar rules
 * with plain number sets, which the translator hands to Temporal as
 * structured calendars. Temporal's own cron reader treats everything after
 * `#` as a comment and refuses `L`; reading the text here lets `#` (nth
 * weekday) and `L` (last day, last weekday) mean exactly what cron means, and
 * lets every unsupported form be refused naming its field.
 */

/** One calendar rule: a time matches when every field holds its value (the year only where set). */
export interface CronCalendar {
  second: number[];
  minute: number[];
  hour: number[];
  /** `*` or the days 1–31. */
  dayOfMonth: number[] | '*';
  /** 1–12. */
  month: number[];
  /** `*` or 0–6, 0 = Sunday. */
  dayOfWeek: number[] | '*';
  /** Only for February rules of `L`: the leap or common years Temporal knows. */
  year?: 'leap' | 'common';
}

/** Temporal's calendar years: it matches nothing outside them. */
export const TEMPORAL_MIN_YEAR = 2000;
export const TEMPORAL_MAX_YEAR = 2100;

export const CRON_FIELD_NAMES = ['second', 'minute', 'hour', 'day-of-month', 'month', 'day-of-week'] as const;
export type CronFieldName = (typeof CRON_FIELD_NAMES)[number];

const BOUNDS: Record<CronFieldName, { min: number; max: number }> = {
  second: { min: 0, max: 59 },
  minute: { min: 0, max: 59 },
  hour: { min: 0, max: 23 },
  'day-of-month': { min: 1, max: 31 },
  month: { min: 1, max: 12 },
  // 7 is Sunday too, as in every cron.
  'day-of-week': { min: 0, max: 7 },
};

const MONTH_NAMES = [
  'january',
  'february',
  'march',
  'april',
  'may',
  'june',
  'july',
  'august',
  'september',
  'october',
  'november',
  'december',
];
const DAY_NAMES = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

const SHORTHANDS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

export function isLeapYear(y: number): boolean {
  return y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
}

export function daysInMonth(month: number, year: number): number {
  return month === 2 ? (isLeapYear(year) ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
}

class CronError extends Error {}

function fail(field: CronFieldName, text: string, why: string): never {
  throw new CronError(`${field} field ${JSON.stringify(text)}: ${why}`);
}

const range = (a: number, b: number, step = 1): number[] => {
  const out: number[] = [];
  for (let v = a; v <= b; v += step) out.push(v);
  return out;
};

function valueOf(field: CronFieldName, token: string, whole: string): number {
  const t = token.toLowerCase();
  const names = field === 'month' ? MONTH_NAMES : field === 'day-of-week' ? DAY_NAMES : null;
  if (names && /^[a-z]+$/.test(t)) {
    const i = names.findIndex((n) => n === t || n.slice(0, 3) === t);
    if (i < 0)
      fail(
        field,
        whole,
        `${JSON.stringify(token)} is not a ${field === 'month' ? 'month' : 'day'} name (write 3 letters, e.g. ${field === 'month' ? 'JAN' : 'MON'}, or the full name)`,
      );
    return field === 'month' ? i + 1 : i;
  }
  if (!/^\d+$/.test(t)) fail(field, whole, `${JSON.stringify(token)} is not a number${names ? ' or a name' : ''}`);
  const n = Number(t);
  const { min, max } = BOUNDS[field];
  if (n < min || n > max) fail(field, whole, `${n} is out of range (${min}-${max})`);
  return n;
}

/** Refusals of forms other crons know, each saying what to write instead. */
function refuseForeign(field: CronFieldName, text: string): void {
  for (const item of text.split(',')) {
    if (item.includes('?')) fail(field, text, '`?` (no specific value) is not supported: write `*`');
    // No month or day name starts with H.
    if (/^h/i.test(item)) {
      fail(field, text, '`H` (hashed value) is not supported: write a fixed value (e.g. 17); to spread schedules apart, set jitterSeconds');
    }
    if (/^(\d+|l)w$/i.test(item)) {
      fail(
        field,
        text,
        '`W` (nearest weekday) is not supported: write the days of month and days of week you mean, e.g. `1-3` with `MON-FRI`',
      );
    }
    if (field !== 'day-of-month' && field !== 'day-of-week' && /^(\d*l|l-\d+)$/i.test(item)) {
      fail(field, text, '`L` (last) is only supported in day-of-month (`L`: the last day) and day-of-week (`5L`: the last Friday)');
    }
    if (field !== 'day-of-week' && item.includes('#'))
      fail(field, text, '`#` (nth weekday) is only supported in day-of-week, e.g. `MON#2`');
  }
}

/** A list field of numbers: `*`, `5`, `1-5`, `*\/15`, `5/10`, `1-20/3`, names, and lists of them. */
function parseList(field: CronFieldName, text: string): number[] {
  const { min, max } = BOUNDS[field];
  const out = new Set<number>();
  for (const part of text.split(',')) {
    if (part === '') fail(field, text, 'an empty list item');
    const m = /^([^-/]+)(?:-([^-/]+))?(?:\/(\d+))?$/.exec(part);
    if (!m) fail(field, text, `${JSON.stringify(part)} is not a value, a range a-b, or a step a-b/s, */s or a/s`);
    const [, a, b, s] = m;
    const step = s === undefined ? 1 : Number(s);
    if (step < 1) fail(field, text, `the step of ${JSON.stringify(part)} must be at least 1`);
    const start = a === '*' ? min : valueOf(field, a, text);
    if (a === '*' && b !== undefined) fail(field, text, `${JSON.stringify(part)}: \`*\` cannot start a range`);
    const end = b !== undefined ? valueOf(field, b, text) : a === '*' || s !== undefined ? max : start;
    if (end < start) {
      fail(field, text, `the range ${JSON.stringify(part)} ends before it starts (ranges do not wrap: write two, e.g. FRI-SAT,SUN-MON)`);
    }
    for (const v of range(start, end, step)) out.add(field === 'day-of-week' && v === 7 ? 0 : v);
  }
  return [...out].sort((x, y) => x - y);
}

interface DayOfMonth {
  all: boolean;
  days: number[];
  last: boolean;
}

function parseDayOfMonth(text: string): DayOfMonth {
  if (text === '*') return { all: true, days: [], last: false };
  const items = text.split(',');
  const last = items.some((i) => /^l$/i.test(i));
  for (const i of items) {
    if (/l/i.test(i) && !/^l$/i.test(i)) {
      fail(
        'day-of-month',
        text,
        `${JSON.stringify(i)} is not supported: \`L\` stands alone (the last day of the month); for days before it, list them per month or use \`5L\`-style last weekdays`,
      );
    }
  }
  const rest = items.filter((i) => !/^l$/i.test(i));
  return { all: false, days: rest.length ? parseList('day-of-month', rest.join(',')) : [], last };
}

interface DayOfWeek {
  all: boolean;
  plain: number[];
  nth: { day: number; n: number }[];
  last: number[];
}

function parseDayOfWeek(text: string): DayOfWeek {
  if (text === '*') return { all: true, plain: [], nth: [], last: [] };
  const out: DayOfWeek = { all: false, plain: [], nth: [], last: [] };
  const plain: string[] = [];
  const day = (token: string): number => {
    const v = valueOf('day-of-week', token, text);
    return v === 7 ? 0 : v;
  };
  for (const item of text.split(',')) {
    const nth = /^([a-z]+|\d+)#(\d+)$/i.exec(item);
    const last = /^([a-z]+|\d+)l$/i.exec(item);
    if (item.includes('#')) {
      if (!nth) fail('day-of-week', text, `${JSON.stringify(item)}: \`#\` takes one day and a number, e.g. MON#2 or 5#5`);
      const n = Number(nth[2]);
      if (n < 1 || n > 5) fail('day-of-week', text, `${JSON.stringify(item)}: a month has a 1st to 5th weekday at most (write #1 to #5)`);
      out.nth.push({ day: day(nth[1]), n });
    } else if (/^l$/i.test(item)) {
      fail(
        'day-of-week',
        text,
        '`L` alone is not supported in day-of-week: write `6` for Saturday, or e.g. `5L` for the last Friday of the month',
      );
    } else if (last) {
      // `5L`, `FRIL`: no day name ends in L.
      out.last.push(day(last[1]));
    } else {
      plain.push(item);
    }
  }
  if (plain.length) out.plain = parseList('day-of-week', plain.join(','));
  return out;
}

const LENGTH_CLASSES: { months: number[]; length: number; year?: 'leap' | 'common' }[] = [
  { months: [1, 3, 5, 7, 8, 10, 12], length: 31 },
  { months: [4, 6, 9, 11], length: 30 },
  { months: [2], length: 29, year: 'leap' },
  { months: [2], length: 28, year: 'common' },
];

/**
 * Calendar rules that mean exactly `expr` (5 fields, or 6 with seconds first).
 * As Temporal does for its own cron, a time must match both day-of-month and
 * day-of-week when both are restricted. `n#k` is weekday n on days 7k-6 to 7k;
 * `L` the last day of each month; `nL` weekday n in the last seven days. Where
 * the last day depends on the month's length, the rules are split into
 * 31-day months, 30-day months, and February in leap and in common years.
 * Throws an ApiError (SCHEDULE_INVALID_CRON) naming `path` and the cron field.
 */
export function cronCalendarsOf(expr: string, path: string): CronCalendar[] {
  try {
    return parse(expr);
  } catch (err) {
    if (!(err instanceof CronError)) throw err;
    const message = `${JSON.stringify(expr)}: ${err.message}`;
    throw new ApiError(ErrorCode.SCHEDULE_INVALID_CRON, `${path}: ${message}`, [{ field: path, message }]);
  }
}

function parse(expr: string): CronCalendar[] {
  const text = expr.trim();
  if (text.startsWith('@')) {
    const word = text.split(/\s+/)[0].toLowerCase();
    if (SHORTHANDS[word]) throw new CronError(`shorthands are not supported: write the fields, ${JSON.stringify(SHORTHANDS[word])}`);
    if (word === '@every') throw new CronError('`@every` is not supported: use intervals, e.g. {"everySeconds": 3600}');
    if (word === '@reboot')
      throw new CronError('`@reboot` is not supported: a schedule fires at times; trigger the schedule (POST …/trigger) to run it now');
    throw new CronError(`${JSON.stringify(word)} is not a cron expression`);
  }
  if (/^(CRON_)?TZ=/i.test(text)) throw new CronError('a time zone prefix is not supported: set spec.timezone instead');
  const fields = text.split(/\s+/);
  if (fields.length === 7) {
    throw new CronError('has 7 fields; a year field is not supported: use a calendar rule with `year`, or startAt/endAt');
  }
  if (fields.length !== 5 && fields.length !== 6) {
    throw new CronError(
      `has ${fields.length} field${fields.length === 1 ? '' : 's'}; a cron expression has 5 (minute hour day-of-month month day-of-week), or 6 with seconds first`,
    );
  }
  const [sec, min, hour, dom, mon, dow] = fields.length === 6 ? fields : ['0', ...fields];
  const names = fields.length === 6 ? CRON_FIELD_NAMES : CRON_FIELD_NAMES.slice(1);
  fields.forEach((f, i) => {
    const name = names[i];
    refuseForeign(name, f);
    if (!/^[\w*,\-/#]+$/.test(f)) fail(name, f, 'has characters no cron field takes');
  });
  const second = parseList('second', sec);
  const minute = parseList('minute', min);
  const hours = parseList('hour', hour);
  const months = parseList('month', mon);
  const dayOfMonth = parseDayOfMonth(dom);
  const dayOfWeek = parseDayOfWeek(dow);

  // Each branch is a weekday condition with the day-of-month window it needs.
  type Branch = { days: number[] | '*'; window: ((length: number) => number[]) | null; byLength: boolean };
  const branches: Branch[] = dayOfWeek.all
    ? [{ days: '*', window: null, byLength: false }]
    : [
        ...(dayOfWeek.plain.length ? [{ days: dayOfWeek.plain, window: null, byLength: false }] : []),
        ...dayOfWeek.nth.map((x) => ({ days: [x.day], window: () => range(7 * x.n - 6, Math.min(7 * x.n, 31)), byLength: false })),
        ...dayOfWeek.last.map((d) => ({ days: [d], window: (length: number) => range(length - 6, length), byLength: true })),
      ];
  const domSet = (length: number): number[] | '*' =>
    dayOfMonth.all ? '*' : [...new Set([...dayOfMonth.days, ...(dayOfMonth.last ? [length] : [])])].sort((a, b) => a - b);

  const out: CronCalendar[] = [];
  const base = { second, minute, hour: hours };
  for (const b of branches) {
    const days = (length: number): number[] | '*' => {
      const set = domSet(length);
      if (!b.window) return set;
      const w = b.window(length);
      return set === '*' ? w : set.filter((d) => w.includes(d));
    };
    if (!b.byLength && !dayOfMonth.last) {
      const d = days(31);
      // A day no allowed month has (`30 2`, `31 4,6,9,11`) never comes; d is sorted, its first day is the earliest.
      if (d !== '*' && !LENGTH_CLASSES.some((c) => d.length > 0 && d[0] <= c.length && c.months.some((m) => months.includes(m)))) continue;
      out.push({ ...base, dayOfMonth: d, month: months, dayOfWeek: b.days });
      continue;
    }
    for (const c of LENGTH_CLASSES) {
      const inMonths = c.months.filter((m) => months.includes(m));
      const d = days(c.length);
      if (inMonths.length === 0 || (d !== '*' && d.length === 0)) continue;
      out.push({ ...base, dayOfMonth: d, month: inMonths, dayOfWeek: b.days, ...(c.year ? { year: c.year } : {}) });
    }
  }
  if (out.length === 0) {
    throw new CronError(
      `matches no day: its day-of-month ${JSON.stringify(dom)} and day-of-week ${JSON.stringify(dow)} never fall together`,
    );
  }
  return out;
}

/** Sorted values as runs of consecutive numbers. */
export function runsOf(values: readonly number[]): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  for (const v of values) {
    const last = out.at(-1);
    if (last && v === last.end + 1) last.end = v;
    else out.push({ start: v, end: v });
  }
  return out;
}

/** The years of Temporal's range, as stepped ranges. */
export function yearRanges(kind: 'leap' | 'common'): { start: number; end: number; step: number }[] {
  // 2000 and 2096 are leap years, 2100 is not.
  if (kind === 'leap') return [{ start: 2000, end: 2096, step: 4 }];
  return [
    { start: 2001, end: 2097, step: 4 },
    { start: 2002, end: 2098, step: 4 },
    { start: 2003, end: 2099, step: 4 },
    { start: 2100, end: 2100, step: 1 },
  ];
}
