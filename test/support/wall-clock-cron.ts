/* A brute-force POSIX wall-clock cron matcher, the reference of the
 * differential tests. Written to be obviously right, not fast, and shares no
 * code with the product: it reads the cron text itself and tests each UTC
 * minute of a window, converting it to the zone's wall clock with
 * Intl.DateTimeFormat. An instant matches when its wall-clock reading
 * matches the fields; so a local time in a repeated hour matches in both
 * passes and one in a skipped hour never. Day-of-month and day-of-week must
 * both match (the product's rule for cron, as Temporal's), `L` is the last day,
 * `n#k` the k-th weekday n, `nL` the last weekday n of the month. */

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

type Pred = (v: number) => boolean;

function lastDay(y: number, m: number): number {
  return new Date(Date.UTC(y, m, 0)).getUTCDate(); // day 0 of the next month
}

function num(text: string, names: string[] | null): number {
  const t = text.toLowerCase();
  if (names) {
    const i = names.findIndex((n) => t.startsWith(n) && t.length >= 3);
    if (i >= 0 && /^[a-z]+$/.test(t)) return names === MONTHS ? i + 1 : i;
  }
  if (!/^\d+$/.test(t)) throw new Error(`reference: cannot read ${text}`);
  return Number(t);
}

function listPred(text: string, min: number, max: number, names: string[] | null): Pred {
  const items = text.split(',').map((item): Pred => {
    const [body, stepText] = item.split('/');
    const step = stepText === undefined ? 1 : Number(stepText);
    let a: number;
    let b: number;
    if (body === '*') [a, b] = [min, max];
    else if (body.includes('-')) [a, b] = body.split('-').map((x) => num(x, names)) as [number, number];
    else [a, b] = [num(body, names), stepText === undefined ? num(body, names) : max];
    return (v) => v >= a && v <= b && (v - a) % step === 0;
  });
  return (v) => items.some((p) => p(v));
}

export interface WallClock {
  y: number;
  mo: number;
  d: number;
  h: number;
  mi: number;
  dow: number;
}

export interface CronMatcher {
  /** Whether the wall-clock minute matches every field but the seconds. */
  minute(w: WallClock): boolean;
  second: Pred;
}

export function cronMatcher(expr: string): CronMatcher {
  const f = expr.trim().split(/\s+/);
  const [s, mi, h, dom, mo, dow] = f.length === 6 ? f : ['0', ...f];
  const second = listPred(s, 0, 59, null);
  const minute = listPred(mi, 0, 59, null);
  const hour = listPred(h, 0, 23, null);
  const month = listPred(mo, 1, 12, MONTHS);
  const domItems = dom.split(',');
  const domPlain = domItems.filter((x) => x.toUpperCase() !== 'L');
  const domPred = domPlain.length ? listPred(domPlain.join(','), 1, 31, null) : () => false;
  const dayOfMonth = (w: WallClock): boolean =>
    dom === '*' || domPred(w.d) || (domItems.some((x) => x.toUpperCase() === 'L') && w.d === lastDay(w.y, w.mo));
  const dowPreds = dow.split(',').map((item): ((w: WallClock) => boolean) => {
    if (item === '*') return () => true;
    const nth = /^(\w+)#(\d)$/.exec(item);
    if (nth) return (w) => num(nth[1], DAYS) % 7 === w.dow && Math.ceil(w.d / 7) === Number(nth[2]);
    const last = /^(\w+?)L$/i.exec(item);
    if (last) return (w) => num(last[1], DAYS) % 7 === w.dow && w.d + 7 > lastDay(w.y, w.mo);
    const p = listPred(item, 0, 7, DAYS);
    return (w) => p(w.dow) || (w.dow === 0 && p(7));
  });
  return {
    minute: (w) => minute(w.mi) && hour(w.h) && month(w.mo) && dayOfMonth(w) && dowPreds.some((p) => p(w)),
    second,
  };
}

const formatters = new Map<string, Intl.DateTimeFormat>();
/** UTC offset of `zone` at `ms`, in ms, read from Intl. */
export function intlOffsetMs(zone: string, ms: number): number {
  let fmt = formatters.get(zone);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, fmt);
  }
  const p = Object.fromEntries(fmt.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  const wall = Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour), Number(p.minute), Number(p.second));
  return wall - Math.floor(ms / 1000) * 1000;
}

const MINUTE = 60_000;
const BLOCK = 15 * MINUTE;

/**
 * Every instant in [fromMs, toMs] whose wall-clock reading in `zone` matches
 * one of `exprs`. Offsets are read once per 15-minute UTC block (every zone
 * changes its offset on a quarter hour), then each minute is tested.
 */
export function wallClockMatches(exprs: string[], zone: string, fromMs: number, toMs: number): number[] {
  const matchers = exprs.map(cronMatcher);
  const out: number[] = [];
  const start = Math.floor(fromMs / MINUTE) * MINUTE;
  let offset = 0;
  for (let t = start; t <= toMs; t += MINUTE) {
    if (t === start || t % BLOCK === 0) offset = intlOffsetMs(zone, t);
    const l = new Date(t + offset);
    const w: WallClock = {
      y: l.getUTCFullYear(),
      mo: l.getUTCMonth() + 1,
      d: l.getUTCDate(),
      h: l.getUTCHours(),
      mi: l.getUTCMinutes(),
      dow: l.getUTCDay(),
    };
    if (w.y < 2000 || w.y > 2100) continue;
    const hit = matchers.filter((m) => m.minute(w));
    if (hit.length === 0) continue;
    for (let s = 0; s < 60; s++) {
      const ms = t + s * 1000;
      if (ms >= fromMs && ms <= toMs && hit.some((m) => m.second(s))) out.push(ms);
    }
  }
  return out;
}
