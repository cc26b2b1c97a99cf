/* Differential test of schedule previews: the fire times the real Temporal dev
 * server computes (through the product's preview service) against an
 * independent brute-force POSIX wall-clock matcher (test/support/wall-clock-cron.ts,
 * which reads the cron text itself and shares no code with the product), over
 * generated crons (lists, ranges, steps, names, seconds, `#`, `L`), intervals,
 * zones with and without daylight saving, southern-hemisphere and
 * non-whole-hour offsets, and start dates right before their clock changes.
 *
 * Every difference must fall under a rule docs/schedules.md states
 * ("Time zones and daylight saving"): `repeated_hour` (a local time that occurs
 * twice, clocks going back) or `skipped_hour` (at a gap, clocks going forward),
 * classified here from Intl offsets alone (see ruleAt), not by the preview's
 * code; anything else fails. The preview must flag exactly
 * these differences: `unmatched` on the fires the engine adds, `missing` for
 * the times it leaves out, `repeated` on local times it fires twice.
 * Real: Temporal, the translator, the preview service. Nothing fires (every
 * schedule is a paused throw-away). */
import { Client, Connection } from '@temporalio/client';
import fc from 'fast-check';
import { SchedulePreviewService } from '../../apps/api/src/schedules/schedule-preview.service';
import type { SchedulePreview } from '../../apps/api/src/schedules/schedule-preview.service';
import { temporalSpecOf } from '../../apps/api/src/schedules/schedule-translator';
import { denseCron } from '../support/cron-arbitrary';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';
import { cronMatcher, intlOffsetMs, wallClockMatches } from '../support/wall-clock-cron';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/**
 * Generated specs (SCHEDULE_DIFF_SPECS; the default fits in about a minute on a
 * loaded two-core machine), previewed this many at a time against Temporal.
 */
const SPECS = Number(process.env.SCHEDULE_DIFF_SPECS ?? 160);
const CONCURRENCY = 12;
/** The reference is compared over at most this much of each preview. */
const MAX_SPAN = 21 * DAY;

const ZONES = [
  'America/New_York',
  'America/Santiago',
  'Europe/Berlin',
  'Australia/Sydney',
  'Australia/Lord_Howe',
  'Pacific/Chatham',
  'Asia/Kathmandu',
  'Asia/Kolkata',
  'UTC',
];

type Rule = 'repeated_hour' | 'skipped_hour' | 'unexplained';
interface Transition {
  at: number;
  kind: 'gap' | 'overlap';
  span: number;
}

/** Offset changes of `zone` in [from, to], found with Intl alone (15-minute scan). */
function transitionsOf(zone: string, from: number, to: number): Transition[] {
  const out: Transition[] = [];
  let prev = intlOffsetMs(zone, from);
  for (let t = Math.ceil(from / (15 * MINUTE)) * 15 * MINUTE; t <= to; t += 15 * MINUTE) {
    const o = intlOffsetMs(zone, t);
    if (o !== prev) out.push({ at: t, kind: o > prev ? 'gap' : 'overlap', span: Math.abs(o - prev) });
    prev = o;
  }
  return out;
}

/** The local wall-clock reading of `ms` in `zone`, as a UTC timestamp of the same digits (from Intl). */
const wallOf = (zone: string, ms: number): number => ms + intlOffsetMs(zone, ms);

/**
 * The rule a difference falls under, from what the wall clock does at the
 * zone's changes (Intl offsets alone; nothing of the preview code), and only
 * the shapes docs/schedules.md states:
 * - `repeated_hour`: clocks went back, and a time left out occurs twice (it
 *   lies in the fold [T's new wall time, + d); for a change that is not a
 *   whole hour on the hour, Lord Howe and Chatham, also the documented hole
 *   the one-hour shift leaves, up to an hour past the fold's end); a time the
 *   engine adds is its one-hour shift: in the fold or the hour after it, and
 *   one hour earlier on the wall clock a time the cron does match.
 * - `skipped_hour`: clocks went forward, and either the gap holds local
 *   midnight and the fire is on the local day that starts with it (Santiago:
 *   Temporal reads that day's weekday as the day before), or the change is
 *   not a whole hour on the hour and the fire lies in the hour right after
 *   the gap (the engine's shifted or dropped fire after it).
 * Anything else is `unexplained`.
 */
function ruleAt(
  ms: number,
  kind: 'engineOnly' | 'missing',
  transitions: Transition[],
  zone: string,
  matchesWall: (wall: number) => boolean,
): Rule {
  const wall = wallOf(zone, ms);
  for (const t of transitions) {
    // Wall readings just before and at the change: the gap or the fold lies between them.
    const before = wallOf(zone, t.at - 1) + 1;
    const after = wallOf(zone, t.at);
    const irregular = t.span !== HOUR || after % HOUR !== 0;
    if (t.kind === 'overlap') {
      // `after` is the fold's start, `before` its end (clocks go back from `before` to `after`).
      if (kind === 'missing' && wall >= after && wall < before + (irregular ? HOUR : 0)) return 'repeated_hour';
      if (kind === 'engineOnly' && wall >= after && wall < before + HOUR && matchesWall(wall - HOUR)) return 'repeated_hour';
    } else {
      // Clocks jump from `before` to `after`: local times in [before, after) do not exist.
      const holdsMidnight = Math.floor((after - 1) / DAY) * DAY >= before;
      if (holdsMidnight && Math.floor(wall / DAY) === Math.floor(after / DAY)) return 'skipped_hour';
      if (irregular && wall >= after && wall < after + HOUR) return 'skipped_hour';
    }
  }
  return 'unexplained';
}

/** Whether a wall-clock reading (digits as UTC) matches one of the crons, by the reference matcher. */
function wallMatcher(crons: string[] | undefined): (wall: number) => boolean {
  const ms = (crons ?? []).map((c) => cronMatcher(c));
  return (wall) => {
    const t = new Date(wall);
    const w = {
      y: t.getUTCFullYear(),
      mo: t.getUTCMonth() + 1,
      d: t.getUTCDate(),
      h: t.getUTCHours(),
      mi: t.getUTCMinutes(),
      dow: t.getUTCDay(),
    };
    return ms.some((m) => m.minute(w) && m.second(t.getUTCSeconds()));
  };
}

interface Case {
  cron?: string[];
  intervals?: { everySeconds: number; offsetSeconds: number }[];
  zone: string;
  from: number;
  count: number;
}

const zoneTransitions = new Map(
  ZONES.map((z) => [z, transitionsOf(z, Date.parse('2026-01-01T00:00:00Z'), Date.parse('2028-01-01T00:00:00Z'))]),
);

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    kind: fc.oneof({ weight: 9, arbitrary: fc.constant('cron' as const) }, { weight: 1, arbitrary: fc.constant('interval' as const) }),
    cron: fc.array(denseCron, { minLength: 1, maxLength: 2 }),
    every: fc.constantFrom(900, 1800, 3600, 5400),
    phase: fc.constantFrom(0, 0, 300, 1800),
    zone: fc.constantFrom(...ZONES),
    pick: fc.nat(),
    before: fc.integer({ min: 0, max: 36 * 60 }),
    plain: fc.date({ min: new Date('2026-01-01T00:00:00Z'), max: new Date('2027-12-01T00:00:00Z'), noInvalidDate: true }),
    count: fc.integer({ min: 20, max: 50 }),
  })
  .map((r) => {
    const ts = zoneTransitions.get(r.zone)!;
    // Start up to 36 hours before one of the zone's clock changes (zones without any: anywhere).
    const from = ts.length ? ts[r.pick % ts.length].at - r.before * MINUTE : Math.floor(r.plain.getTime() / MINUTE) * MINUTE;
    return {
      ...(r.kind === 'cron' ? { cron: r.cron } : { intervals: [{ everySeconds: r.every, offsetSeconds: r.phase % r.every }] }),
      zone: r.zone,
      from,
      count: r.count,
    };
  });

let stack: TestStack;
let connection: Connection;
let previews: SchedulePreviewService;

beforeAll(async () => {
  stack = await startStack('schedule-differential', { workers: false });
  connection = await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS });
  previews = new SchedulePreviewService(new Client({ connection, namespace: stack.config.TEMPORAL_NAMESPACE }), stack.config);
});
afterAll(async () => {
  await connection?.close();
  await stack?.stop();
});

const iso = (ms: number): string => new Date(ms).toISOString();

interface Outcome {
  fires: number;
  differences: { kind: 'engineOnly' | 'missing'; rule: Rule; at: string; local: string }[];
  repeated: number;
}

/** Compares one preview with the reference and with its own flags. */
function check(c: Case, p: SchedulePreview): Outcome {
  const engine = p.fires.map((f) => Date.parse(f.at));
  const last = engine.at(-1) ?? c.from;
  const to = Math.min(last, c.from + MAX_SPAN);
  const reference = c.cron
    ? wallClockMatches(c.cron, c.zone, c.from, to)
    : (() => {
        const { everySeconds, offsetSeconds } = c.intervals![0];
        const out: number[] = [];
        for (
          let t = Math.ceil((c.from / 1000 - offsetSeconds) / everySeconds) * everySeconds + offsetSeconds;
          t * 1000 <= to;
          t += everySeconds
        ) {
          out.push(t * 1000);
        }
        return out;
      })();
  const ts = transitionsOf(c.zone, c.from - 3 * HOUR, to + 3 * HOUR);
  const matches = wallMatcher(c.cron);
  const inSpan = engine.filter((t) => t <= to);
  const refSet = new Set(reference);
  const engineSet = new Set(inSpan);
  const local = (ms: number): string => p.fires.find((f) => Date.parse(f.at) === ms)?.local ?? iso(ms + intlOffsetMs(c.zone, ms));
  const differences: Outcome['differences'] = [
    ...inSpan
      .filter((t) => !refSet.has(t))
      .map((t) => ({ kind: 'engineOnly' as const, rule: ruleAt(t, 'engineOnly', ts, c.zone, matches), at: iso(t), local: local(t) })),
    ...reference
      .filter((t) => !engineSet.has(t))
      .map((t) => ({ kind: 'missing' as const, rule: ruleAt(t, 'missing', ts, c.zone, matches), at: iso(t), local: local(t) })),
  ];

  // The preview flags exactly these differences, with the same rule.
  expect(p.compared).toBe(true);
  const flagged = p.fires
    .filter((f) => Date.parse(f.at) <= to && f.unmatched)
    .map((f) => ({ kind: 'engineOnly', rule: f.unmatched, at: f.at }));
  const missing = p.missing.filter((m) => Date.parse(m.at) <= to).map((m) => ({ kind: 'missing', rule: m.rule, at: m.at }));
  const sort = <T extends { at: string; kind: string }>(a: T[]) => [...a].sort((x, y) => (x.at + x.kind).localeCompare(y.at + y.kind));
  expect(sort([...flagged, ...missing])).toEqual(sort(differences.map(({ kind, rule, at }) => ({ kind, rule, at }))));

  // `repeated`: exactly the fires whose wall-clock time another fire of the preview has too.
  const walls = p.fires.map((f) => f.local.slice(0, 19));
  const repeated = p.fires.filter((_, i) => walls.indexOf(walls[i]) !== walls.lastIndexOf(walls[i])).map((f) => f.at);
  expect(p.fires.filter((f) => f.repeated).map((f) => f.at)).toEqual(repeated);
  return { fires: inSpan.length, differences, repeated: repeated.length };
}

async function inBatches<T, R>(items: T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

describe('previews against a brute-force wall-clock matcher', () => {
  test('generated specs across clock changes: every difference is a documented rule and is flagged', async () => {
    const cases = fc.sample(caseArb, { numRuns: SPECS, seed: 2026_10 });
    const tally = new Map<string, number>();
    const byZone = new Map<string, number>();
    const examples = new Map<string, string>();
    let fires = 0;
    let repeated = 0;
    // Summed over concurrent cases: where the time goes, for the runtime bound.
    let temporalMs = 0;
    let refused = 0;
    let referenceMs = 0;
    const failures: string[] = [];
    await inBatches(cases, CONCURRENCY, async (c) => {
      let spec;
      try {
        spec = temporalSpecOf({ cron: c.cron, intervals: c.intervals, timezone: c.zone }, []);
      } catch (err) {
        // Day fields that never meet (`L` with `SUN#1`) are refused at validation; nothing to preview.
        if (!/matches no day/.test((err as Error).message)) throw err;
        refused++;
        return;
      }
      const t0 = Date.now();
      const p = await previews.preview({ spec }, spec, new Date(c.from), c.count);
      const t1 = Date.now();
      temporalMs += t1 - t0;
      const label = `${JSON.stringify(c.cron ?? c.intervals)} ${c.zone} from ${iso(c.from)}`;
      try {
        const o = check(c, p);
        referenceMs += Date.now() - t1;
        fires += o.fires;
        repeated += o.repeated;
        for (const d of o.differences) {
          const key = `${d.rule} ${d.kind}`;
          tally.set(key, (tally.get(key) ?? 0) + 1);
          byZone.set(`${d.rule} ${c.zone}`, (byZone.get(`${d.rule} ${c.zone}`) ?? 0) + 1);
          if (!examples.has(`${key} ${c.zone}`)) examples.set(`${key} ${c.zone}`, `${label}: ${d.local}`);
          if (d.rule === 'unexplained') failures.push(`${label}: ${d.kind} ${d.at} (${d.local})`);
        }
      } catch (err) {
        failures.push(`${label}: ${(err as Error).message.slice(0, 2000)}`);
      }
    });
    const lines = [
      `[differential] ${cases.length} specs (${refused} refused: day fields that never meet), ${fires} fires compared, ${repeated} fires flagged repeated ` +
        `(previews ${temporalMs} ms, reference and checks ${referenceMs} ms)`,
      ...[...tally].sort().map(([k, n]) => `  ${k}: ${n}`),
      '  by zone:',
      ...[...byZone].sort().map(([k, n]) => `    ${k}: ${n}`),
      '  first example of each:',
      ...[...examples].sort().map(([k, v]) => `    ${k}: ${v}`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    expect(failures).toEqual([]);
  }, 600_000);

  /** The cases of the table in docs/schedules.md, printed in full. */
  test.each([
    ['*/30 * * * *', 'America/New_York', '2026-11-01T03:00:00Z', 12, { missing: 0, unmatched: 0, repeated: 4 }],
    ['*/30 * * * *', 'America/Santiago', '2026-04-05T01:00:00Z', 8, { missing: 0, unmatched: 0, repeated: 4 }],
    ['*/30 * * * *', 'Europe/Berlin', '2026-10-24T23:00:00Z', 8, { missing: 2, unmatched: 0, repeated: 0 }],
    ['30 2 * * *', 'Europe/Berlin', '2026-10-24T00:00:00Z', 3, { missing: 1, unmatched: 0, repeated: 0 }],
    ['30 1 * * *', 'Europe/Berlin', '2026-10-24T00:00:00Z', 3, { missing: 0, unmatched: 1, repeated: 0 }],
    ['*/30 * * * *', 'Australia/Sydney', '2026-04-04T14:00:00Z', 8, { missing: 2, unmatched: 0, repeated: 0 }],
    ['*/15 * * * *', 'Australia/Lord_Howe', '2026-04-04T13:00:00Z', 16, null],
    ['*/15 * * * *', 'Australia/Lord_Howe', '2026-10-03T14:00:00Z', 16, null],
    ['*/15 * * * *', 'Pacific/Chatham', '2026-04-04T12:00:00Z', 20, null],
    ['*/15 * * * *', 'Pacific/Chatham', '2026-09-26T12:00:00Z', 20, null],
    ['*/20 0-3 * * SUN', 'America/Santiago', '2026-09-05T12:00:00Z', 10, null],
  ] as const)('%s in %s from %s', async (cron, zone, from, count, expected) => {
    const c: Case = { cron: [cron], zone, from: Date.parse(from), count };
    const spec = temporalSpecOf({ cron: [cron], timezone: zone }, []);
    const p = await previews.preview({ spec }, spec, new Date(c.from), count);
    const o = check(c, p);
    const show = p.fires.map((f) => `${f.local}${f.repeated ? ' repeated' : ''}${f.unmatched ? ` unmatched(${f.unmatched})` : ''}`);
    process.stdout.write(
      `[table] ${cron} ${zone}\n  fires: ${show.join(', ')}\n  missing: ${p.missing.map((m) => `${m.local} (${m.rule})`).join(', ') || 'none'}\n`,
    );
    expect(o.differences.filter((d) => d.rule === 'unexplained')).toEqual([]);
    if (expected) {
      expect({
        missing: o.differences.filter((d) => d.kind === 'missing').length,
        unmatched: o.differences.filter((d) => d.kind === 'engineOnly').length,
        repeated: o.repeated,
      }).toEqual(expected);
    }
  });

  test('an hourly interval ignores the zone: 25 fires on the New York fall-back day, two of them repeated local times', async () => {
    const zone = 'America/New_York';
    const from = Date.parse('2026-11-01T04:00:00Z'); // local midnight
    const c: Case = { intervals: [{ everySeconds: 3600, offsetSeconds: 0 }], zone, from, count: 25 };
    const spec = temporalSpecOf({ intervals: c.intervals, timezone: zone }, []);
    const p = await previews.preview({ spec }, spec, new Date(from), 26);
    const sameDay = p.fires.filter((f) => f.local.startsWith('2026-11-01'));
    expect(sameDay).toHaveLength(25);
    expect(sameDay.filter((f) => f.repeated).map((f) => f.local)).toEqual(['2026-11-01T01:00:00-04:00', '2026-11-01T01:00:00-05:00']);
    expect(check({ ...c, count: 26 }, p).differences).toEqual([]);
  });
});
