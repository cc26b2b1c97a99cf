/* Cron expressions read by the product (apps/api/src/schedules/cron-spec.ts):
 * refusals name the cron field and say what to write instead; what is taken
 * means, as calendar rules, exactly what the cron text means on the wall
 * clock, checked against a brute-force matcher over generated expressions,
 * zones and windows. Pure: no Temporal here (the e2e differential test
 * compares with Temporal). */
import fc from 'fast-check';
import { ApiError, ErrorCode } from '../../apps/api/src/common/api-error';
import { cronCalendarsOf, isLeapYear, yearRanges } from '../../apps/api/src/schedules/cron-spec';
import { temporalSpecOf } from '../../apps/api/src/schedules/schedule-translator';
import { specMatchingTimes } from '../../apps/api/src/schedules/spec-matcher';
import { validateScheduleSpec } from '../../apps/api/src/schedules/spec-validation';
import { anyCron, dayCron } from '../support/cron-arbitrary';
import { cronMatcher, wallClockMatches } from '../support/wall-clock-cron';

function refusal(expr: string): ApiError {
  try {
    cronCalendarsOf(expr, 'spec.cron[0]');
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    return err as ApiError;
  }
  throw new Error(`${expr} was accepted`);
}

describe('cron refusals name the field and say what to write instead', () => {
  test.each([
    ['0 0 ? * MON', /day-of-month field "\?": `\?` .* write `\*`/],
    ['0 0 * * ?', /day-of-week field "\?"/],
    ['H 0 * * *', /minute field "H": `H` \(hashed value\) .*jitterSeconds/],
    ['0 H(0-5) * * *', /hour field "H\(0-5\)": `H` \(hashed value\)/],
    ['0 0 1-7 * MON#3', /matches no day: its day-of-month "1-7" and day-of-week "MON#3" never fall together/],
    ['0 0 15W * *', /day-of-month field "15W": `W` \(nearest weekday\) is not supported/],
    ['0 0 LW * *', /day-of-month field "LW": `W`/],
    ['0 0 L-3 * *', /day-of-month field "L-3"/],
    ['L 0 * * *', /minute field "L": `L` \(last\) is only supported in day-of-month/],
    ['0 L * * *', /hour field "L"/],
    ['0 0 * L *', /month field "L"/],
    ['0 0 * * L', /day-of-week field "L": `L` alone .* `6` for Saturday/],
    ['0 0 1#2 * *', /day-of-month field "1#2": `#` \(nth weekday\) is only supported in day-of-week/],
    ['0 0 * * MON#6', /day-of-week field "MON#6": .*a month has a 1st to 5th weekday/],
    ['0 0 * * MON#0', /day-of-week field "MON#0"/],
    ['0 0 * * MON-FRI#2', /day-of-week field "MON-FRI#2": .*`#` takes one day/],
    ['0 0 1 januaryy *', /month field "januaryy": "januaryy" is not a month name/],
    ['0 0 1 uar *', /month field "uar"/],
    ['0 0 * * FRI-MON', /ranges do not wrap: write two/],
    ['61 * * * *', /minute field "61": 61 is out of range \(0-59\)/],
    ['0 24 * * *', /hour field "24": 24 is out of range \(0-23\)/],
    ['0 0 32 * *', /day-of-month field "32"/],
    ['0 0 * 13 *', /month field "13"/],
    ['0 0 * * 8', /day-of-week field "8": 8 is out of range \(0-7\)/],
    ['*/0 * * * *', /the step of "\*\/0" must be at least 1/],
    ['@reboot', /`@reboot` is not supported/],
    ['@daily', /shorthands are not supported: write the fields, "0 0 \* \* \*"/],
    ['@every 1h', /`@every` is not supported: use intervals/],
    ['TZ=Europe/Berlin 0 0 * * *', /set spec.timezone instead/],
    ['* * *', /has 3 fields; a cron expression has 5/],
    ['0 0 0 1 1 * 2027', /has 7 fields; a year field is not supported/],
    ['0 0 1,,2 * *', /an empty list item/],
    ['0 0 * * MON!', /has characters no cron field takes/],
  ])('%s', (expr, message) => {
    const err = refusal(expr);
    expect(err.code).toBe(ErrorCode.SCHEDULE_INVALID_CRON);
    expect(err.message).toMatch(/^spec\.cron\[0\]: /);
    expect(err.message).toMatch(message);
    expect(err.details).toEqual([{ field: 'spec.cron[0]', message: expect.stringMatching(message) }]);
  });

  test('through spec validation, the field path is the cron entry', () => {
    expect(() => validateScheduleSpec({ cron: ['0 9 * * *', '0 0 ? * *'] })).toThrow(/^spec\.cron\[1\]: .*day-of-month/);
  });

  test('an interval offset must be less than the interval, naming the field', () => {
    expect(() => validateScheduleSpec({ intervals: [{ everySeconds: 60 }, { everySeconds: 900, offsetSeconds: 900 }] })).toThrow(
      /^spec\.intervals\[1\]\.offsetSeconds: offsetSeconds \(900\) must be less than everySeconds \(900\)$/,
    );
    expect(() => validateScheduleSpec({ intervals: [{ everySeconds: 900, offsetSeconds: 899 }] })).not.toThrow();
  });

  test('calendar years outside Temporal’s 2000–2100 are refused naming the field', () => {
    for (const year of ['1999', '2101', '1970-2030', '9999']) {
      expect(() => validateScheduleSpec({ calendars: [{ hour: '9' }, { year, hour: '9' }] })).toThrow(
        expect.objectContaining({
          code: ErrorCode.SCHEDULE_INVALID_CALENDAR,
          message: expect.stringMatching(/^spec\.calendars\[1\]\.year: .*2000-2100/),
        }),
      );
    }
    expect(() => validateScheduleSpec({ calendars: [{ year: '2000-2100', hour: '9' }] })).not.toThrow();
  });
});

describe('cron forms that are taken', () => {
  test.each([
    ['0 10 * * MON#2', [{ dayOfWeek: [1], dayOfMonth: [8, 9, 10, 11, 12, 13, 14] }]],
    ['0 10 * * 5#5', [{ dayOfWeek: [5], dayOfMonth: [29, 30, 31] }]],
    ['0 10 1-10 * MON#2', [{ dayOfWeek: [1], dayOfMonth: [8, 9, 10] }]],
    ['0 0 1 january,FEB *', [{ month: [1, 2], dayOfMonth: [1] }]],
  ])('%s', (expr, expected) => {
    expect(cronCalendarsOf(expr, 'x')).toEqual(expected.map((e) => expect.objectContaining(e)));
  });

  test('`L` splits by month length, and February by leap year', () => {
    const rules = cronCalendarsOf('0 0 L * *', 'x');
    expect(rules.map((r) => [r.month, r.dayOfMonth, r.year])).toEqual([
      [[1, 3, 5, 7, 8, 10, 12], [31], undefined],
      [[4, 6, 9, 11], [30], undefined],
      [[2], [29], 'leap'],
      [[2], [28], 'common'],
    ]);
    expect(cronCalendarsOf('0 0 * FEB FRIL', 'x').map((r) => [r.dayOfMonth, r.year])).toEqual([
      [[23, 24, 25, 26, 27, 28, 29], 'leap'],
      [[22, 23, 24, 25, 26, 27, 28], 'common'],
    ]);
  });

  test('the year ranges are exactly the leap and the common years 2000–2100', () => {
    const expand = (k: 'leap' | 'common') =>
      yearRanges(k).flatMap((r) => Array.from({ length: Math.floor((r.end - r.start) / r.step) + 1 }, (_, i) => r.start + i * r.step));
    const leap = expand('leap').sort();
    const common = expand('common').sort();
    const all = Array.from({ length: 101 }, (_, i) => 2000 + i);
    expect(leap).toEqual(all.filter(isLeapYear));
    expect(common).toEqual(all.filter((y) => !isLeapYear(y)));
  });
});

/** The product's reading; a cron refused because its day fields never meet reads as no time at all. */
function productTimes(expr: string, zone: string, fromMs: number, toMs: number): number[] | null {
  try {
    return specMatchingTimes(temporalSpecOf({ cron: [expr], timezone: zone }, []), fromMs, toMs);
  } catch (err) {
    if (err instanceof ApiError && /matches no day/.test(err.message)) return [];
    throw err;
  }
}

describe('what the product makes of a cron means what the cron text means (brute-force wall-clock reference)', () => {
  const zones = [
    'UTC',
    'Europe/Berlin',
    'America/New_York',
    'America/Santiago',
    'Australia/Lord_Howe',
    'Pacific/Chatham',
    'Asia/Kathmandu',
  ];
  /** The instants the calendar rules sent to Temporal give equal those the wall-clock matcher finds; returns how many. */
  const expectSameTimes = (expr: string, zone: string, fromMs: number, toMs: number): number => {
    const reference = wallClockMatches([expr], zone, fromMs, toMs);
    expect({ expr, zone, times: productTimes(expr, zone, fromMs, toMs)?.map((t) => new Date(t).toISOString()) }).toEqual({
      expr,
      zone,
      times: reference.map((t) => new Date(t).toISOString()),
    });
    return reference.length;
  };
  test('generated crons, zones and windows', () => {
    let cases = 0;
    let times = 0;
    fc.assert(
      fc.property(
        anyCron,
        fc.constantFrom(...zones),
        fc.date({ min: new Date('2001-01-01T00:00:00Z'), max: new Date('2099-01-01T00:00:00Z'), noInvalidDate: true }),
        fc.integer({ min: 10, max: 8 * 1440 }),
        (expr, zone, from, minutes) => {
          const fromMs = Math.floor(from.getTime() / 60_000) * 60_000;
          // With seconds, a window of up to six hours (21,600 times at most).
          const toMs = fromMs + (expr.split(' ').length === 6 ? Math.min(minutes, 360) : minutes) * 60_000;
          cases++;
          times += expectSameTimes(expr, zone, fromMs, toMs);
        },
      ),
      { numRuns: 120, seed: 10_004 },
    );
    process.stdout.write(`[cron-spec] ${cases} generated crons compared, ${times} matching times\n`);
  });

  test('generated day rules (`#`, `L`, `nL`, names, lists) over windows of up to 14 months', () => {
    let times = 0;
    fc.assert(
      fc.property(
        dayCron,
        fc.constantFrom(...zones),
        fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-01-01T00:00:00Z'), noInvalidDate: true }),
        fc.integer({ min: 28, max: 430 }),
        (expr, zone, from, days) => {
          const fromMs = Math.floor(from.getTime() / 60_000) * 60_000;
          const toMs = fromMs + days * 86_400_000;
          times += expectSameTimes(expr, zone, fromMs, toMs);
        },
      ),
      { numRuns: 40, seed: 10_005 },
    );
    process.stdout.write(`[cron-spec] 40 generated day rules compared, ${times} matching times\n`);
  });
});

/** Whether the day fields of `expr` match any day of 2001–2028: one full 28-year cycle of weekdays and leap years. */
function firesInACycle(expr: string): boolean {
  const f = expr.trim().split(/\s+/);
  const [dom, mon, dow] = f.slice(-3);
  const days = cronMatcher(`0 0 ${dom} ${mon} ${dow}`);
  for (let ms = Date.UTC(2001, 0, 1); ms < Date.UTC(2029, 0, 1); ms += 86_400_000) {
    const t = new Date(ms);
    const w = { y: t.getUTCFullYear(), mo: t.getUTCMonth() + 1, d: t.getUTCDate(), h: 0, mi: 0, dow: t.getUTCDay() };
    if (days.minute(w)) return true;
  }
  return false;
}

describe('a cron is refused exactly when its day fields can never match (brute force over a 28-year cycle)', () => {
  test.each(['0 0 30 2 *', '0 0 31 4,6,9,11 *', '0 0 31 2 MON#5', '0 0 30,31 FEB *', '0 0 31 4 *'])('%s is refused', (expr) => {
    expect(refusal(expr).message).toMatch(/matches no day/);
    expect(firesInACycle(expr)).toBe(false);
  });
  test.each(['0 0 29 2 *', '0 0 31 2,3 *', '0 0 30 4,6,9,11 *', '0 0 * 2 MON#5', '0 0 29-31 2 SUN'])('%s is taken', (expr) => {
    expect(cronCalendarsOf(expr, 'spec.cron[0]').length).toBeGreaterThan(0);
    expect(firesInACycle(expr)).toBe(true);
  });
  // Late days, short months and fifth weekdays: the combinations near the edge.
  const edgeCron = fc
    .tuple(
      fc.constantFrom('*', '1', '28', '29', '30', '31', '29,30', '30,31', '29-31', 'L', '15,L', '1-7', '8-14'),
      fc.constantFrom('*', '2', 'FEB', '4', '4,6,9,11', '2,4', '1-3', '9-11', '2,6'),
      fc.constantFrom('*', 'MON', 'SUN#5', 'MON#5', 'FRI#4', 'SAT#1', '5L', 'SUNL', 'MON,FRI', 'TUE#3'),
    )
    .map(([dom, mon, dow]) => `0 12 ${dom} ${mon} ${dow}`);
  test('generated day fields: accepted ⇔ some day of the cycle matches', () => {
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(fc.oneof(edgeCron, dayCron), (expr) => {
        let taken: boolean;
        try {
          cronCalendarsOf(expr, 'spec.cron[0]');
          taken = true;
        } catch (err) {
          if (!(err instanceof ApiError) || !/matches no day/.test(err.message)) throw err;
          taken = false;
        }
        if (taken) accepted++;
        else refused++;
        expect({ expr, taken }).toEqual({ expr, taken: firesInACycle(expr) });
      }),
      { numRuns: 300, seed: 10_010 },
    );
    process.stdout.write(`[cron-spec] day fields: ${accepted} accepted, ${refused} refused, each checked over 2001–2028\n`);
    expect(refused).toBeGreaterThan(10);
  });
});
