/* fast-check generators of cron expressions in the product's syntax: lists,
 * ranges, steps, names, seconds, `#` (nth weekday) and `L` (last day, last
 * weekday). `dense` keeps the day fields open and the hours near the usual
 * daylight-saving changes, so a few dozen fires cross one. */
import fc from 'fast-check';

const int = (a: number, b: number) => fc.integer({ min: a, max: b });
const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

/** `*`, a value, a range, a stepped range, `a/s`, `*\/s`, or a list of values. */
function numeric(min: number, max: number, steps: number[]): fc.Arbitrary<string> {
  const value = int(min, max).map(String);
  const rangeOf = fc.tuple(int(min, max), int(min, max)).map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`);
  return fc.oneof(
    fc.constant('*'),
    value,
    rangeOf,
    fc.tuple(rangeOf, fc.constantFrom(...steps)).map(([r, s]) => `${r}/${s}`),
    fc.tuple(int(min, max), fc.constantFrom(...steps)).map(([a, s]) => `${a}/${s}`),
    fc.constantFrom(...steps).map((s) => `*/${s}`),
    fc.uniqueArray(int(min, max), { minLength: 2, maxLength: 4 }).map((v) => v.join(',')),
  );
}

const dayOfWeekItem = fc.oneof(
  int(0, 7).map(String),
  fc.constantFrom(...DAYS, 'monday', 'Friday'),
  fc.tuple(int(0, 6), int(0, 6)).map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`),
  fc.constant('MON-FRI'),
  fc.tuple(fc.constantFrom(...DAYS, '1', '5'), int(1, 5)).map(([d, n]) => `${d}#${n}`),
  fc.constantFrom('5L', 'FRIL', '1L', 'SUNL', '0L'),
);
const dayOfWeek = fc.oneof(
  { weight: 2, arbitrary: fc.constant('*') },
  { weight: 3, arbitrary: dayOfWeekItem },
  { weight: 2, arbitrary: fc.array(dayOfWeekItem, { minLength: 2, maxLength: 3 }).map((a) => a.join(',')) },
);
const dayOfMonth = fc.oneof(
  { weight: 3, arbitrary: fc.constant('*') },
  { weight: 2, arbitrary: numeric(1, 31, [2, 5, 10]) },
  { weight: 2, arbitrary: fc.constant('L') },
  { weight: 1, arbitrary: fc.uniqueArray(int(1, 31), { minLength: 1, maxLength: 2 }).map((v) => `${v.join(',')},L`) },
);
const month = fc.oneof(
  { weight: 4, arbitrary: fc.constant('*') },
  { weight: 1, arbitrary: numeric(1, 12, [2, 3]) },
  { weight: 1, arbitrary: fc.constantFrom(...MONTHS, 'JAN-JUN', 'march', 'FEB,MAR') },
);

/** Any cron expression the product takes (5 fields, or 6 with seconds first). */
export const anyCron: fc.Arbitrary<string> = fc
  .tuple(
    fc.option(numeric(0, 59, [10, 15, 20, 30]), { freq: 3 }),
    numeric(0, 59, [5, 10, 15, 20, 30]),
    numeric(0, 23, [2, 3, 6]),
    dayOfMonth,
    month,
    dayOfWeek,
  )
  .map(([s, ...rest]) => (s === null ? rest : [s, ...rest]).join(' '));

/** Open days, minutes at quarter hours or finer and hours around 0-4 and 21-23 local: many fires near clock changes. */
export const denseCron: fc.Arbitrary<string> = fc
  .tuple(
    fc.option(fc.constantFrom('0', '0,30', '*/20', '15'), { freq: 4 }),
    fc.oneof(fc.constantFrom('*/15', '*/5', '*/10', '0,30', '0', '30', '45', '15,45', '*/20', '0-59/7', '*/30'), numeric(0, 59, [5, 15])),
    fc.constantFrom('*', '0-4', '1-3', '2', '1,2,3', '0-4/2', '21-23', '*/2', '1', '3', '22-23,0-3'),
    fc.constantFrom('*', '*', '*', '1-28', 'L'),
    fc.constant('*'),
    fc.constantFrom('*', '*', '*', 'SUN', 'SAT,SUN', '0#1', 'SUN#2', 'SUNL'),
  )
  .map(([s, ...rest]) => (s === null ? rest : [s, ...rest]).join(' '));

/** One time of day, and day fields of every kind: few fires, for long windows. */
export const dayCron: fc.Arbitrary<string> = fc
  .tuple(int(0, 59), fc.constantFrom('0', '2', '12', '23', '1,13'), dayOfMonth, month, dayOfWeek)
  .map((f) => f.join(' '));
