/* Schedule previews against the real Temporal dev server: fire times come from
 * Temporal's ListScheduleMatchingTimes (through throw-away paused schedules for
 * unsaved specs) and are checked against an independent cron engine
 * (cron-parser) across both 2026 daylight-saving changes in Europe/Berlin.
 * Real: Temporal, the translator, the service. Not used: the HTTP routes and
 * the workers (nothing fires: every schedule here is paused). */
import type { ScheduleSpecInput } from '@task-scheduler/contracts';
import { localIsoString } from '@task-scheduler/core';
import { Client, Connection } from '@temporalio/client';
import type { ScheduleSpec } from '@temporalio/client';
import { CronExpressionParser } from 'cron-parser';
import { ApiError, ErrorCode } from '../../apps/api/src/common/api-error';
import { SchedulePreviewService } from '../../apps/api/src/schedules/schedule-preview.service';
import type { SchedulePreview } from '../../apps/api/src/schedules/schedule-preview.service';
import { temporalSpecOf } from '../../apps/api/src/schedules/schedule-translator';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';

const BERLIN = 'Europe/Berlin';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let stack: TestStack;
let connection: Connection;
let client: Client;
let previews: SchedulePreviewService;
/** Ids of every throw-away schedule the service created in this file. */
const previewIdsCreated: string[] = [];

beforeAll(async () => {
  stack = await startStack('schedule-preview', { workers: false });
  connection = await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS });
  client = new Client({ connection, namespace: stack.config.TEMPORAL_NAMESPACE });
  previews = new SchedulePreviewService(client, stack.config);
  const create = client.schedule.create.bind(client.schedule);
  client.schedule.create = ((opts: Parameters<typeof create>[0]) => {
    if (opts.scheduleId.includes('.preview.')) previewIdsCreated.push(opts.scheduleId);
    return create(opts);
  }) as typeof client.schedule.create;
});
afterAll(async () => {
  await connection?.close();
  await stack?.stop();
});
afterEach(() => jest.restoreAllMocks());

const specOf = (input: Omit<ScheduleSpecInput, 'excludeCalendarIds'>): ScheduleSpec => temporalSpecOf(input, []);
const iso = (dates: Date[]): string[] => dates.map((d) => d.toISOString());

/** The same cron read by cron-parser: fires at or after `from`, up to and including `until`. */
function cronParserTimes(expr: string, zone: string, from: Date, until: Date): string[] {
  const it = CronExpressionParser.parse(expr, { currentDate: new Date(from.getTime() - 1000), tz: zone });
  const out: string[] = [];
  for (;;) {
    const t = it.next().toDate();
    if (t > until) return out;
    if (t >= from) out.push(t.toISOString());
  }
}

/** Instants a transition can move fires to or from: the repeated hour's two passes, or the hour after a gap. */
function affected(p: SchedulePreview): (at: string) => boolean {
  const windows = p.dstTransitions.map((t) => {
    const at = Date.parse(t.at);
    const span = Date.parse(`${t.localEnd}:00Z`) - Date.parse(`${t.localStart}:00Z`);
    return t.kind === 'gap' ? [at, at + span] : [at - span, at + span];
  });
  return (at) => windows.some(([a, b]) => Date.parse(at) >= a && Date.parse(at) < b);
}

describe('schedule previews against Temporal', () => {
  describe('Berlin crons across the 2026 DST changes agree with cron-parser outside the changed hours', () => {
    interface Case {
      expr: string;
      from: string;
      count: number;
      /** Exactly what Temporal and cron-parser list in the changed hours (see `affected`). */
      gap: { temporal: string[]; cronParser: string[] } | null;
      overlap: { temporal: string[]; cronParser: string[] } | null;
      gapEffect?: RegExp;
      overlapEffect?: RegExp;
    }
    const cases: Case[] = [
      {
        // Daily at 02:30: the time does not exist on 29 March and happens twice on 25 October.
        expr: '30 2 * * *',
        from: '2026-03-25T00:00:00Z',
        count: 240,
        gap: { temporal: [], cronParser: ['2026-03-29T01:30:00.000Z'] },
        overlap: { temporal: ['2026-10-25T01:30:00.000Z'], cronParser: ['2026-10-25T00:30:00.000Z'] },
        gapEffect: /Skipped: the 1 fire at 02:30 \(as on 2026-0[34]-\d\d\) did not run that day and nothing ran in their place\.$/,
        overlapEffect:
          /Fired once, only in the second pass: at 2026-10-25T02:30:00\+01:00 \(as on 2026-10-\d\d the schedule fires at 02:30/,
      },
      {
        expr: '0 9 * * *',
        from: '2026-03-25T00:00:00Z',
        count: 240,
        gap: { temporal: [], cronParser: [] },
        overlap: { temporal: [], cronParser: [] },
        gapEffect: /No fire falls in the missing time/,
        overlapEffect: /No fire falls in the repeated time/,
      },
      {
        expr: '*/30 * * * *',
        from: '2026-03-25T00:00:00Z',
        count: 240,
        gap: {
          temporal: ['2026-03-29T01:00:00.000Z', '2026-03-29T01:30:00.000Z'],
          cronParser: ['2026-03-29T01:00:00.000Z', '2026-03-29T01:30:00.000Z'],
        },
        overlap: null,
        gapEffect:
          /Skipped: the 2 fires at 02:00, 02:30 \(as on 2026-03-\d\d\) did not run that day and nothing ran in their place; right after the change it fired at 2026-03-29T03:00:00\+02:00, 2026-03-29T03:30:00\+02:00, as on other days\.$/,
      },
      {
        expr: '*/30 * * * *',
        from: '2026-10-22T00:00:00Z',
        count: 240,
        gap: null,
        overlap: {
          temporal: ['2026-10-25T00:00:00.000Z', '2026-10-25T01:30:00.000Z'],
          cronParser: ['2026-10-25T00:00:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-25T01:00:00.000Z', '2026-10-25T01:30:00.000Z'],
        },
        overlapEffect:
          /Each fired once, partly in each pass: at 2026-10-25T02:00:00\+02:00, 2026-10-25T02:30:00\+01:00 \(as on 2026-10-\d\d the schedule fires at 02:00, 02:30 in that hour\)\.$/,
      },
    ];

    test.each(cases)('$expr from $from', async (c) => {
      const spec = specOf({ cron: [c.expr], timezone: BERLIN });
      const from = new Date(c.from);
      const p = await previews.preview({ spec }, spec, from, c.count);
      expect(p.timezone).toBe(BERLIN);
      expect(p.fires).toHaveLength(c.count);
      const temporal = p.fires.map((f) => f.at);
      const last = new Date(temporal[temporal.length - 1]);
      const reference = cronParserTimes(c.expr, BERLIN, from, last);
      const inChange = affected(p);

      // The transitions crossed are exactly the ones expected, and everything outside their hours agrees.
      expect(p.dstTransitions.map((t) => t.kind)).toEqual([...(c.gap ? ['gap'] : []), ...(c.overlap ? ['overlap'] : [])]);
      expect(temporal.filter((t) => !inChange(t))).toEqual(reference.filter((t) => !inChange(t)));

      for (const kind of ['gap', 'overlap'] as const) {
        const expected = c[kind];
        const t = p.dstTransitions.find((x) => x.kind === kind);
        if (!expected || !t) continue;
        const only = (times: string[]) => times.filter((x) => affected({ ...p, dstTransitions: [t] })(x));
        const seen = { temporal: only(temporal), cronParser: only(reference) };
        const show = (times: string[]) => times.map((x) => `${localIsoString(new Date(x), BERLIN)} (${x})`).join(', ') || 'nothing';
        process.stdout.write(
          `[${c.expr} ${BERLIN} ${kind} ${t.localStart}–${t.localEnd.slice(11)}]\n  Temporal:    ${show(seen.temporal)}\n` +
            `  cron-parser: ${show(seen.cronParser)}\n  effect: ${t.effect}\n`,
        );
        expect(seen).toEqual(expected);
        expect(t.effect).toMatch(kind === 'gap' ? c.gapEffect! : c.overlapEffect!);
      }

      // Local times and flags follow the zone.
      for (const f of p.fires) {
        const offset = f.local.slice(-6);
        const shifted = new Date(Date.parse(f.at) + (offset === '+02:00' ? 2 : 1) * HOUR).toISOString().slice(0, 19);
        expect(['+01:00', '+02:00']).toContain(offset);
        expect(f.local.slice(0, 19)).toBe(shifted);
      }
      const flagged = p.fires.filter((f) => f.dst).map((f) => `${f.local} ${f.dst}`);
      const expectedFlags = [
        ...(c.gap?.temporal ?? []).map((at) => `${p.fires.find((f) => f.at === at)!.local} after_gap`),
        ...(c.overlap?.temporal ?? []).map((at) => `${p.fires.find((f) => f.at === at)!.local} repeated_hour`),
      ];
      expect(flagged).toEqual(expectedFlags);
    });

    test('the transitions are described in full', async () => {
      const spec = specOf({ cron: ['30 2 * * *'], timezone: BERLIN });
      const p = await previews.preview({ spec }, spec, new Date('2026-03-25T00:00:00Z'), 240);
      expect(p.dstTransitions).toEqual([
        {
          at: '2026-03-29T01:00:00.000Z',
          kind: 'gap',
          offsetBefore: '+01:00',
          offsetAfter: '+02:00',
          localStart: '2026-03-29T02:00',
          localEnd: '2026-03-29T03:00',
          effect:
            'Clocks jump from 02:00 to 03:00 (+01:00 → +02:00) at 2026-03-29T01:00:00.000Z; local 02:00–03:00 on 2026-03-29 does not exist. ' +
            'Skipped: the 1 fire at 02:30 (as on 2026-04-05) did not run that day and nothing ran in their place.',
        },
        {
          at: '2026-10-25T01:00:00.000Z',
          kind: 'overlap',
          offsetBefore: '+02:00',
          offsetAfter: '+01:00',
          localStart: '2026-10-25T02:00',
          localEnd: '2026-10-25T03:00',
          effect:
            'Clocks fall back from 03:00 to 02:00 (+02:00 → +01:00) at 2026-10-25T01:00:00.000Z; local 02:00–03:00 on 2026-10-25 happens twice. ' +
            'Fired once, only in the second pass: at 2026-10-25T02:30:00+01:00 (as on 2026-10-18 the schedule fires at 02:30 in that hour).',
        },
      ]);
      const around = p.fires.filter((f) => f.at >= '2026-03-28' && f.at < '2026-03-31').map((f) => f.local);
      expect(around).toEqual(['2026-03-28T02:30:00+01:00', '2026-03-30T02:30:00+02:00']);
    });
  });

  test('an hourly interval in UTC fires on the hour, `from` included', async () => {
    const spec = specOf({ intervals: [{ everySeconds: 3600 }] });
    const onTheHour = await previews.matchingTimes({ spec }, new Date('2026-01-01T00:00:00Z'), 48);
    expect(iso(onTheHour)).toEqual(
      Array.from({ length: 48 }, (_, i) => new Date(Date.parse('2026-01-01T00:00:00Z') + i * HOUR).toISOString()),
    );
    const p = await previews.preview({ spec }, spec, new Date('2026-01-01T00:00:30Z'), 3);
    expect(p).toEqual({
      timezone: 'UTC',
      from: '2026-01-01T00:00:30.000Z',
      fires: [
        { at: '2026-01-01T01:00:00.000Z', local: '2026-01-01T01:00:00+00:00' },
        { at: '2026-01-01T02:00:00.000Z', local: '2026-01-01T02:00:00+00:00' },
        { at: '2026-01-01T03:00:00.000Z', local: '2026-01-01T03:00:00+00:00' },
      ],
      dstTransitions: [],
      compared: true,
      missing: [],
    });
  });

  test('1000 fire times come in a few calls, for a one-second interval and for a daily cron', async () => {
    const calls = jest.spyOn(client.workflowService, 'listScheduleMatchingTimes');
    const from = new Date('2026-05-01T00:00:00Z');

    const everySecond = await previews.matchingTimes({ spec: specOf({ intervals: [{ everySeconds: 1 }] }) }, from, 1000);
    expect(everySecond).toHaveLength(1000);
    expect(everySecond.every((d, i) => d.getTime() === from.getTime() + i * 1000)).toBe(true);
    const secondCalls = calls.mock.calls.length;
    expect(secondCalls).toBeLessThanOrEqual(2);

    const daily = await previews.matchingTimes({ spec: specOf({ cron: ['0 9 * * *'] }) }, from, 1000);
    expect(daily).toHaveLength(1000);
    expect(daily[0].toISOString()).toBe('2026-05-01T09:00:00.000Z');
    expect(daily.every((d, i) => d.getTime() === daily[0].getTime() + i * DAY)).toBe(true);
    const dailyCalls = calls.mock.calls.length - secondCalls;
    process.stdout.write(`[matching-times calls] 1000 one-second times: ${secondCalls}; 1000 daily times: ${dailyCalls}\n`);
    expect(dailyCalls).toBeLessThanOrEqual(8);

    // `until` bounds the search: fewer times than asked.
    const bounded = await previews.matchingTimes({ spec: specOf({ cron: ['0 9 * * *'] }) }, from, 1000, {
      until: new Date('2026-05-10T12:00:00Z'),
    });
    expect(bounded).toHaveLength(10);
  });

  test('a saved Temporal schedule is previewed by its id, with the same times as its spec', async () => {
    const spec = specOf({ cron: ['15 6 * * MON-FRI'], timezone: BERLIN });
    const scheduleId = `${stack.config.TASK_QUEUE_PREFIX}.schedule.saved-${Date.now()}`;
    const handle = await client.schedule.create({
      scheduleId,
      spec,
      action: { type: 'startWorkflow', workflowType: 'previewOnly', taskQueue: `${stack.config.TASK_QUEUE_PREFIX}.preview`, args: [] },
      state: { paused: true },
    });
    try {
      const from = new Date('2026-03-20T00:00:00Z');
      const saved = await previews.preview({ temporalScheduleId: scheduleId }, spec, from, 20);
      const unsaved = await previews.preview({ spec }, spec, from, 20);
      expect(saved).toEqual(unsaved);
      expect(saved.fires[0].local).toBe('2026-03-20T06:15:00+01:00');
      expect(saved.fires.find((f) => f.at.startsWith('2026-03-30'))?.local).toBe('2026-03-30T06:15:00+02:00');
      expect(saved.dstTransitions[0].effect).toMatch(/No fire falls in the missing time/);
    } finally {
      await handle.delete();
    }
    await expect(previews.matchingTimes({ temporalScheduleId: `${scheduleId}-missing` }, new Date(), 1)).rejects.toMatchObject({
      code: ErrorCode.SCHEDULE_NOT_FOUND,
    });
  });

  test('an exclusion that removes every time never fires; a normal spec does', async () => {
    const everything = specOf({ cron: ['0 9 * * *'], timezone: BERLIN, exclude: [{ hour: '*', minute: '*', second: '*' }] });
    expect(await previews.firesAtLeastOnce(everything)).toBe(false);
    expect(await previews.firesAtLeastOnce(specOf({ cron: ['0 9 * * *'], timezone: BERLIN }))).toBe(true);
    const weekends = specOf({ cron: ['0 9 * * *'], exclude: [{ dayOfWeek: 'SAT,SUN', hour: '*', minute: '*', second: '*' }] });
    expect(await previews.firesAtLeastOnce(weekends)).toBe(true);
    // Only ever on 29 February 2027, which does not exist.
    expect(await previews.firesAtLeastOnce(specOf({ calendars: [{ year: '2027', month: 'FEB', dayOfMonth: '29', hour: '9' }] }))).toBe(
      false,
    );
  });

  test.each([
    ['an out-of-range cron field', { cron: ['61 * * * *'] }, /^spec\.cron\[0\]: "61 \* \* \* \*": minute field "61": 61 is out of range/],
    ['a cron with too few fields', { cron: ['* *'] }, /^spec\.cron\[0\]: "\* \*": has 2 fields/],
  ])('the product refuses %s before Temporal sees it: SCHEDULE_INVALID_CRON', (_, input, message) => {
    const err = (() => {
      try {
        return temporalSpecOf(input, [], { path: 'spec' });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ code: ErrorCode.SCHEDULE_INVALID_CRON });
    expect((err as ApiError).message).toMatch(message);
  });

  test.each([
    ['an unknown time zone', { cron: ['0 9 * * *'], timezone: 'Mars/Olympus_Mons' }, /^Temporal rejected the schedule spec: .*time zone/],
  ])('Temporal rejects %s: SCHEDULE_REJECTED', async (_, input, message) => {
    const err = await previews.matchingTimes({ spec: specOf(input) }, new Date(), 5).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ code: ErrorCode.SCHEDULE_REJECTED });
    expect((err as ApiError).message).toMatch(message);
    process.stdout.write(`[rejected] ${JSON.stringify(input)}: ${(err as ApiError).message}\n`);
  });

  test('no throw-away preview schedule of this stack is left behind', async () => {
    // Visibility is eventually consistent: wait until the listing shows none.
    const prefix = `${stack.config.TASK_QUEUE_PREFIX}.preview.`;
    const deadline = Date.now() + 30_000;
    let left: string[] = [];
    for (;;) {
      left = [];
      for await (const s of client.schedule.list()) if (s.scheduleId.startsWith(prefix)) left.push(s.scheduleId);
      if (left.length === 0 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(left).toEqual([]);
    // And none of them can be described either (the listing could simply lag behind).
    const ids = previewIdsCreated.splice(0);
    expect(ids.length).toBeGreaterThan(10);
    for (const id of ids) await expect(client.schedule.getHandle(id).describe()).rejects.toThrow(/not found/i);
  });
});
