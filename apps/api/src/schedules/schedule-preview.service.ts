import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { AppConfig } from '@task-scheduler/config';
import { dstTransitions, localIsoString, zoneOffsetMinutes } from '@task-scheduler/core';
import type { DstTransition } from '@task-scheduler/core';
import { Client, ScheduleNotFoundError } from '@temporalio/client';
import type { ScheduleSpec } from '@temporalio/client';
import { msNumberToTs, tsToMs } from '@temporalio/common/lib/time';
import { ApiError, ErrorCode } from '../common/api-error';
import { GRPC, grpcCode } from '../common/temporal';
import { APP_CONFIG, TEMPORAL_CLIENT } from '../infra/tokens';
import { specMatchingTimes } from './spec-matcher';

/** A saved schedule (by its Temporal id) or a spec not saved yet. */
export type PreviewTarget = { temporalScheduleId: string } | { spec: ScheduleSpec };

export interface PreviewFire {
  /** UTC ISO 8601. */
  at: string;
  /** Wall-clock time in the schedule's zone with its offset, `2026-03-30T02:30:00+02:00`. */
  local: string;
  /**
   * `after_gap`: within the hour after clocks jumped forward (as long as the jump);
   * `repeated_hour`: its local time happens twice that day.
   */
  dst?: 'after_gap' | 'repeated_hour';
  /** The engine fires this local wall time twice (once in each pass of a repeated hour). */
  repeated?: true;
  /** The engine fires here though no rule of the spec matches this local time; the rule that explains it. */
  unmatched?: DifferenceRule;
}

/**
 * Why the engine and the spec's wall-clock reading differ: `repeated_hour`
 * near clocks going back, `skipped_hour` near clocks going forward (both
 * stated per zone in docs/schedules.md); `unexplained` for anything else,
 * which no test has seen.
 */
export type DifferenceRule = 'repeated_hour' | 'skipped_hour' | 'unexplained';

/** A time the spec matches on the wall clock that the engine will not fire. */
export interface PreviewMissingFire {
  at: string;
  local: string;
  rule: DifferenceRule;
}

export interface PreviewTransition extends DstTransition {
  /** What the change does to this schedule, read from the fires Temporal computed. */
  effect: string;
}

export interface SchedulePreview {
  timezone: string;
  /** UTC ISO 8601. */
  from: string;
  fires: PreviewFire[];
  /** Offset changes in [from, last fire]. */
  dstTransitions: PreviewTransition[];
  /** Whether the fires were compared with the spec's wall-clock matches (not with jitter). */
  compared: boolean;
  /** Times in [from, last fire] the spec matches that the engine will not fire. */
  missing: PreviewMissingFire[];
}

export interface MatchingTimesOptions {
  /** Stop looking after this instant (default: 20 years after `from`). */
  until?: Date;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const DEFAULT_HORIZON_MS = 20 * 366 * DAY_MS;
/** The first window asked for: even a one-second schedule has only 3600 times in it. */
const FIRST_WINDOW_MS = HOUR_MS;
/** Growth of an empty window; a non-empty one is sized from the density found so far. */
const EMPTY_GROWTH = 16;
/** A window sized from the density asks for this much more than the estimate, so one more call usually suffices. */
const DENSITY_MARGIN = 1.25;
/** Guards against a server answering in trickles: past this many calls, what was found is returned. */
const MAX_CALLS = 64;
const CALL_DEADLINE_MS = 10_000;
/** Temporal answers a query on a schedule whose workflow has not run its first task with FAILED_PRECONDITION; it is ready in milliseconds. */
const NOT_READY_RETRIES = 20;
const NOT_READY_DELAY_MS = 100;

function grpcDetails(err: unknown): string {
  const e = err as { details?: unknown; cause?: { details?: unknown }; message?: string } | undefined;
  const details = e?.details ?? e?.cause?.details;
  return typeof details === 'string' && details ? details : (e?.message ?? String(err));
}

/**
 * Errors of the Temporal calls as API errors; anything unrecognised is rethrown
 * as is. `creating`: the SDK turns Temporal's "Invalid schedule spec: …" into a
 * TypeError when creating, and checks some fields itself the same way.
 */
function apiErrorOf(err: unknown, scheduleId: string, creating = false): unknown {
  if (err instanceof ApiError) return err;
  const code = grpcCode(err);
  if (code === GRPC.UNAVAILABLE || code === GRPC.DEADLINE_EXCEEDED) {
    return new ApiError(ErrorCode.TEMPORAL_UNAVAILABLE, 'schedule times could not be computed: Temporal is unavailable, try again');
  }
  if (code === GRPC.INVALID_ARGUMENT || (creating && err instanceof TypeError)) {
    return new ApiError(ErrorCode.SCHEDULE_REJECTED, `Temporal rejected the schedule spec: ${grpcDetails(err)}`);
  }
  if (code === GRPC.NOT_FOUND || err instanceof ScheduleNotFoundError) {
    return new ApiError(ErrorCode.SCHEDULE_NOT_FOUND, `Temporal has no schedule ${scheduleId}`);
  }
  return err;
}

/**
 * Fire times of schedules as Temporal itself computes them (the
 * `ListScheduleMatchingTimes` RPC), so previews agree with what will run,
 * daylight-saving changes included. A spec not saved yet is previewed through
 * a paused throw-away schedule that is deleted again.
 */
@Injectable()
export class SchedulePreviewService {
  private readonly logger = new Logger('SchedulePreviewService');

  constructor(
    @Inject(TEMPORAL_CLIENT) private readonly temporal: Client,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * The first `count` fire times at or after `from`, in order; fewer when the
   * schedule ends or none are left before `opts.until` (default 20 years on).
   * With jitter in the spec the times include it, drawn for that schedule id
   * (for an unsaved spec: for the throw-away schedule, so one possible draw).
   *
   * @throws ApiError SCHEDULE_REJECTED (Temporal refuses the spec), SCHEDULE_NOT_FOUND
   *   (no such Temporal schedule), TEMPORAL_UNAVAILABLE.
   */
  async matchingTimes(target: PreviewTarget, from: Date, count: number, opts: MatchingTimesOptions = {}): Promise<Date[]> {
    if ('spec' in target) return this.withThrowAwaySchedule(target.spec, (id) => this.collect(id, from, count, opts));
    return this.collect(target.temporalScheduleId, from, count, opts);
  }

  /**
   * The next `count` fires from `from` with their local times in the spec's
   * zone, and each offset change they cross with its effect on this schedule.
   */
  async preview(target: PreviewTarget, spec: ScheduleSpec, from: Date, count: number): Promise<SchedulePreview> {
    const zone = spec.timezone ?? 'UTC';
    const times = await this.matchingTimes(target, from, count);
    const last = times.at(-1);
    const transitions = last ? dstTransitions(zone, from, last) : [];
    const fires = times.map((t) => new FireInZone(t.getTime(), zone));
    // Fires are known up to the last one, or for good when fewer than asked were found.
    const knownUntilWall = times.length < count ? Number.POSITIVE_INFINITY : (fires.at(-1)?.wall ?? Number.NEGATIVE_INFINITY);
    const fromWall = new FireInZone(from.getTime(), zone).wall;
    const described = transitions.map((t) => describeTransition(t, fires, { fromWall, knownUntilWall }));
    const { compared, missing } = compareWithSpec(spec, fires, from.getTime(), last?.getTime() ?? from.getTime(), transitions);
    return {
      timezone: zone,
      from: from.toISOString(),
      fires: fires.map((f) => ({
        at: new Date(f.ms).toISOString(),
        local: f.local,
        ...(f.dst ? { dst: f.dst } : {}),
        ...(f.repeated ? { repeated: true as const } : {}),
        ...(f.unmatched ? { unmatched: f.unmatched } : {}),
      })),
      dstTransitions: described,
      compared,
      missing,
    };
  }

  /**
   * Whether the spec fires at least once within `horizonDays` of now (or of its
   * `startAt`, if later): false for a spec whose exclusions cover every time.
   */
  async firesAtLeastOnce(spec: ScheduleSpec, horizonDays = 366 * 5): Promise<boolean> {
    const start = new Date(Math.max(Date.now(), spec.startAt ? new Date(spec.startAt).getTime() : 0));
    const until = new Date(start.getTime() + horizonDays * DAY_MS);
    return (await this.matchingTimes({ spec }, start, 1, { until })).length > 0;
  }

  /**
   * Asks for a growing window until `count` times are found: Temporal lists
   * every time in [start, end] (at most 1000 a call), so the first window is
   * small, an empty one grows fast, and a non-empty one is sized from the
   * density found so far.
   */
  private async collect(scheduleId: string, from: Date, count: number, opts: MatchingTimesOptions): Promise<Date[]> {
    const out: Date[] = [];
    if (count <= 0) return out;
    const fromMs = from.getTime();
    const until = opts.until?.getTime() ?? fromMs + DEFAULT_HORIZON_MS;
    // Temporal lists times strictly after the start: one millisecond early makes `from` itself count.
    let cursor = fromMs - 1;
    let window = FIRST_WINDOW_MS;
    for (let call = 0; call < MAX_CALLS && out.length < count && cursor < until; call++) {
      const end = Math.min(cursor + window, until);
      const got = await this.listMatching(scheduleId, cursor, end);
      for (const ms of got) if (out.length < count) out.push(new Date(ms));
      // Continue after the last time listed, which is right whether or not the answer was cut short.
      cursor = got.length > 0 ? Math.max(got[got.length - 1], cursor + 1) : end;
      const needed = count - out.length;
      if (needed <= 0) break;
      window =
        out.length === 0 ? window * EMPTY_GROWTH : Math.max(window, Math.ceil(((cursor - fromMs) / out.length) * needed * DENSITY_MARGIN));
    }
    return out;
  }

  private async listMatching(scheduleId: string, startMs: number, endMs: number): Promise<number[]> {
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await this.temporal.connection.withDeadline(Date.now() + CALL_DEADLINE_MS, () =>
          this.temporal.workflowService.listScheduleMatchingTimes({
            namespace: this.config.TEMPORAL_NAMESPACE,
            scheduleId,
            startTime: msNumberToTs(startMs),
            endTime: msNumberToTs(endMs),
          }),
        );
        return (res.startTime ?? []).map((ts) => tsToMs(ts));
      } catch (err) {
        if (grpcCode(err) === GRPC.FAILED_PRECONDITION && attempt < NOT_READY_RETRIES) {
          await sleep(NOT_READY_DELAY_MS);
          continue;
        }
        throw apiErrorOf(err, scheduleId);
      }
    }
  }

  /** Runs `fn` against a paused schedule with `spec` that never starts anything, deleting it afterwards whatever happens. */
  private async withThrowAwaySchedule<T>(spec: ScheduleSpec, fn: (scheduleId: string) => Promise<T>): Promise<T> {
    const prefix = this.config.TASK_QUEUE_PREFIX;
    const scheduleId = `${prefix}.preview.${randomUUID()}`;
    try {
      try {
        await this.temporal.schedule.create({
          scheduleId,
          spec,
          action: { type: 'startWorkflow', workflowType: 'previewOnly', taskQueue: `${prefix}.preview`, args: [] },
          state: { paused: true, note: 'preview only: deleted after use', remainingActions: 0 },
        });
      } catch (err) {
        throw apiErrorOf(err, scheduleId, true);
      }
      return await fn(scheduleId);
    } finally {
      await this.temporal.schedule
        .getHandle(scheduleId)
        .delete()
        .catch((err: unknown) => {
          // Not created at all, or Temporal went away: a paused schedule that never fires is left at worst.
          if (!(err instanceof ScheduleNotFoundError)) this.logger.warn({ err, scheduleId }, 'could not delete preview schedule');
        });
    }
  }
}

/** A fire with its wall-clock reading: `wall` is the local date and time as if it were UTC, in ms. */
class FireInZone {
  readonly wall: number;
  readonly offset: number;
  readonly local: string;
  dst?: 'after_gap' | 'repeated_hour';
  repeated?: true;
  unmatched?: DifferenceRule;

  constructor(
    readonly ms: number,
    zone: string,
  ) {
    this.offset = zoneOffsetMinutes(zone, new Date(ms));
    this.wall = ms + this.offset * 60_000;
    this.local = localIsoString(new Date(ms), zone);
  }
}

/**
 * The rule a difference at `ms` falls under (docs/schedules.md, "Time zones
 * and daylight saving"): clocks going back, within [T − d − 1h, T + d + 1h) of
 * the change at T by d; clocks going forward, within [T − 1h, T + d + 1h), or
 * anywhere in the rest of the local day when the skipped time holds its
 * midnight (Temporal then reads that day's weekday as the day before).
 */
export function differenceRuleAt(ms: number, transitions: readonly DstTransition[], zone: string): DifferenceRule {
  for (const t of transitions) {
    const at = Date.parse(t.at);
    const span = Math.abs(offsetMinutesOf(t.offsetAfter) - offsetMinutesOf(t.offsetBefore)) * 60_000;
    if (t.kind === 'overlap' && ms >= at - span - HOUR_MS && ms < at + span + HOUR_MS) return 'repeated_hour';
    if (t.kind === 'gap' && ms >= at - HOUR_MS && ms < at + span + HOUR_MS) return 'skipped_hour';
    if (t.kind === 'gap' && ms >= at && ms < at + DAY_MS && t.localStart.slice(11) === '00:00') {
      if (localIsoString(new Date(ms), zone).slice(0, 10) === t.localEnd.slice(0, 10)) return 'skipped_hour';
    }
  }
  return 'unexplained';
}

/** Flags fires the engine repeats or adds, and lists what it leaves out, against the spec's own wall-clock matches. */
function compareWithSpec(
  spec: ScheduleSpec,
  fires: FireInZone[],
  fromMs: number,
  toMs: number,
  transitions: readonly DstTransition[],
): { compared: boolean; missing: PreviewMissingFire[] } {
  const byWall = new Map<number, number>();
  for (const f of fires) byWall.set(f.wall, (byWall.get(f.wall) ?? 0) + 1);
  for (const f of fires) if ((byWall.get(f.wall) ?? 0) > 1) f.repeated = true;
  const matched = fires.length ? specMatchingTimes(spec, fromMs, toMs) : [];
  if (!matched) return { compared: false, missing: [] };
  // The transitions around the span too: a difference just inside the span can come from a change just outside it.
  const zone = spec.timezone ?? 'UTC';
  const near = [...transitions, ...dstTransitions(zone, new Date(fromMs - 3 * HOUR_MS), new Date(toMs + 3 * HOUR_MS))];
  const engine = new Set(fires.map((f) => f.ms));
  const spec_ = new Set(matched);
  for (const f of fires) if (!spec_.has(f.ms)) f.unmatched = differenceRuleAt(f.ms, near, zone);
  const missing = matched
    .filter((ms) => !engine.has(ms))
    .map((ms) => ({ at: new Date(ms).toISOString(), local: localIsoString(new Date(ms), zone), rule: differenceRuleAt(ms, near, zone) }));
  return { compared: true, missing };
}

const wallOf = (localMinute: string): number => Date.parse(`${localMinute}:00Z`);
const offsetMinutesOf = (text: string): number => (text[0] === '-' ? -1 : 1) * (Number(text.slice(1, 3)) * 60 + Number(text.slice(4, 6)));
/** `02:30`, or `02:30:15` when the seconds matter. */
const timeOfDay = (wall: number): string => {
  const t = new Date(wall).toISOString().slice(11, 19);
  return t.endsWith(':00') ? t.slice(0, 5) : t;
};
const dateOf = (wall: number): string => new Date(wall).toISOString().slice(0, 10);
const list = (items: string[]): string => (items.length === 0 ? 'no time' : items.join(', '));
const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

interface Coverage {
  fromWall: number;
  knownUntilWall: number;
}

/**
 * Flags the fires a transition touches and says in one or two sentences what
 * happened to them. A fire Temporal skipped leaves no trace, so the
 * transition day is compared with an ordinary day nearby (a week before or
 * after, for weekday rules, else the day before or after) whose fires are
 * known: the fires that day has in the affected local hour are the ones the
 * rules ask for.
 */
function describeTransition(t: DstTransition, fires: FireInZone[], coverage: Coverage): PreviewTransition {
  const at = Date.parse(t.at);
  const start = wallOf(t.localStart);
  const end = wallOf(t.localEnd);
  const span = end - start;
  const before = offsetMinutesOf(t.offsetBefore);
  const after = offsetMinutesOf(t.offsetAfter);
  const day = dateOf(start);
  // Wall-clock window compared with the reference day: the affected hour, and for a gap also the hour where shifted fires land.
  const windowEnd = t.kind === 'gap' ? end + span : end;
  const inWall = (from: number, to: number): FireInZone[] => fires.filter((f) => f.wall >= from && f.wall < to);
  const known = (from: number, to: number): boolean => from >= coverage.fromWall && to - 1 <= coverage.knownUntilWall;

  const reference = [-7, 7, -1, 1]
    .map((days) => days * DAY_MS)
    .filter((shift) => known(start + shift, windowEnd + shift))
    .map((shift) => ({
      date: dateOf(start + shift),
      affected: inWall(start + shift, end + shift),
      window: inWall(start + shift, windowEnd + shift),
    }));
  const ref = reference.find((r) => r.affected.length > 0) ?? reference[0];
  const hm = (f: FireInZone[]): string => list(f.map((x) => timeOfDay(x.wall)));
  const locals = (f: FireInZone[]): string => list(f.map((x) => x.local));
  const partial = known(start, windowEnd) ? '' : ' The preview ends before that hour does, so later fires in it are not counted.';

  if (t.kind === 'gap') {
    const landed = fires.filter((f) => f.ms >= at && f.ms < at + span);
    for (const f of landed) f.dst = 'after_gap';
    const head = `Clocks jump from ${timeOfDay(start)} to ${timeOfDay(end)} (${t.offsetBefore} → ${t.offsetAfter}) at ${t.at}; local ${timeOfDay(start)}–${timeOfDay(end)} on ${day} does not exist.`;
    let effect: string;
    if (!ref) {
      effect = `In the ${plural(span / 60_000, 'minute')} after the change it fired at ${locals(landed)} (no ordinary day nearby is in the preview to compare with).`;
    } else if (ref.affected.length === 0) {
      effect = `No fire falls in the missing time (as on ${ref.date}), so none is lost.`;
    } else {
      const lost = ref.window.length - landed.length;
      const asked = `${hm(ref.affected)} (as on ${ref.date})`;
      const rightAfter = `right after the change it fired at ${locals(landed)}`;
      if (lost <= 0) {
        effect = `Shifted: the ${plural(ref.affected.length, 'fire')} at ${asked} ran after the gap; ${rightAfter}.`;
      } else if (lost === ref.affected.length) {
        effect =
          `Skipped: the ${plural(ref.affected.length, 'fire')} at ${asked} did not run that day and nothing ran in their place` +
          (landed.length > 0 ? `; ${rightAfter}, as on other days.` : '.');
      } else if (lost < ref.affected.length) {
        effect = `Partly skipped: of the fires at ${asked}, ${lost} did not run; ${rightAfter}.`;
      } else {
        effect = `Skipped: the fires at ${asked} did not run, nor did ${plural(lost - ref.affected.length, 'usual fire')} after them; ${rightAfter}.`;
      }
    }
    return { ...t, effect: `${head} ${effect}${partial}` };
  }

  const repeated = fires.filter((f) => f.wall >= start && f.wall < end && Math.abs(f.ms - at) <= span);
  for (const f of repeated) f.dst = 'repeated_hour';
  const first = repeated.filter((f) => f.offset === before);
  const second = repeated.filter((f) => f.offset === after);
  const head = `Clocks fall back from ${timeOfDay(end)} to ${timeOfDay(start)} (${t.offsetBefore} → ${t.offsetAfter}) at ${t.at}; local ${timeOfDay(start)}–${timeOfDay(end)} on ${day} happens twice.`;
  const passes = `first pass (${t.offsetBefore}): ${locals(first)}; second pass (${t.offsetAfter}): ${locals(second)}`;
  let effect: string;
  if (!ref) {
    effect = `It fired in the ${passes} (no ordinary day nearby is in the preview to compare with).`;
  } else {
    const usual = ref.affected.length;
    const asked = `as on ${ref.date} the schedule fires at ${hm(ref.affected)} in that hour`;
    if (usual === 0 && repeated.length === 0) {
      effect = `No fire falls in the repeated time (as on ${ref.date}), so nothing runs twice.`;
    } else if (usual > 0 && first.length === usual && second.length === usual) {
      effect = `Fired twice: at ${locals(first)} and again at ${locals(second)} (${asked}).`;
    } else if (repeated.length === usual) {
      const which = first.length === 0 ? 'only in the second pass' : second.length === 0 ? 'only in the first pass' : 'partly in each pass';
      effect = `${usual === 1 ? 'Fired once' : 'Each fired once'}, ${which}: at ${locals(repeated)} (${asked}).`;
    } else {
      effect = `Fired ${plural(repeated.length, 'time')} in the repeated time: ${passes} (${asked}).`;
    }
  }
  return { ...t, effect: `${head} ${effect}${partial}` };
}
