/* How `/fires` tells what became of each fire of a schedule: pure over the fire times Temporal listed, the
 * runs (or pipeline runs) the schedule's fires recorded and its pause history (test/unit/fire-classification.spec.ts). */
import type { OverlapPolicy } from '@task-scheduler/contracts';

/** Time between a run's recorded end and its workflow's close as Temporal's scheduler sees it, at most. */
export const WORKFLOW_CLOSE_MARGIN_MS = 2_000;

/** A fire with no run younger than this may still be starting: it is left out. */
const STARTING_MS = 5_000;

/** Why a fire did not run. The worker refuses a fire itself for the `*_deleted`/`*_disabled`/`params_invalid` ones. */
export const FIRE_REASONS = [
  'paused',
  'task_disabled',
  'pipeline_deleted',
  'params_invalid',
  'overlap_skip',
  'outside_catchup_window',
  'excluded',
] as const;
export type FireReason = (typeof FIRE_REASONS)[number];

/** Reasons a worker records on a fire it refused (the run row's error starts with `<reason>:`). */
export type RefusalReason = Extract<FireReason, 'task_disabled' | 'pipeline_deleted' | 'params_invalid'>;

export interface FireRecord {
  scheduledAt: string;
  outcome: 'ran' | 'missed' | 'excluded';
  /** The run, or for a pipeline schedule the pipeline run. */
  runId: string | null;
  runStatus: string | null;
  /** When the run was recorded (its workflow started). */
  startedAt: string | null;
  latenessMs: number | null;
  reason: FireReason | null;
}

export interface FireList {
  /** Newest first. */
  items: FireRecord[];
  /** Set when the window held more fires than one answer: ask again from here. */
  nextFrom: string | null;
}

/** A run a fire of the schedule recorded (a task run or a pipeline run alike). */
export interface FiredRun {
  id: string;
  status: string;
  scheduledAt: Date | null;
  /** When the run was recorded. */
  queuedAt: Date;
  finishedAt: Date | null;
  /** Set when the worker recorded the fire without running it. */
  refused: RefusalReason | null;
}

export interface PauseEvent {
  kind: string;
  at: Date;
  cause: string | null;
}

export interface FireWindow {
  /** Nominal fire times with every exclusion applied (what should have fired). */
  expected: readonly Date[];
  /** The same without exclusions, ascending; a time only this list has was excluded. */
  unexcluded: readonly Date[];
  runs: readonly FiredRun[];
  /** `paused`/`resumed` events, oldest first. */
  events: readonly PauseEvent[];
  overlap: OverlapPolicy | undefined;
  from: Date;
  until: Date;
  now: number;
}

/**
 * One record per fire in [from, until], unsorted: `excluded`; `ran` (with its lateness); or `missed` with
 * the first reason that applies — refused by the worker, held paused by a disabled task, paused, skipped for
 * overlap, else `outside_catchup_window` (the fallback). Runs at times the spec does not produce (triggers,
 * backfills) are fires too.
 */
export function classifyFires(w: FireWindow): FireRecord[] {
  const { runs, events, until, from } = w;
  const byTime = new Map(runs.filter((r) => r.scheduledAt).map((r) => [(r.scheduledAt as Date).getTime(), r]));
  // A disabled task holds the schedule paused on its own, beside the schedule's own pause: two states, not one.
  const pausedAt = (t: number, byTask: boolean): boolean => {
    let paused = false;
    for (const e of events) if (e.at.getTime() <= t && (e.cause === 'task_disabled') === byTask) paused = e.kind === 'paused';
    return paused;
  };
  // A run's end is recorded a moment before its workflow closes, and Temporal's scheduler learns of the close after that.
  const overlapping = (t: number): boolean =>
    runs.some(
      (r) =>
        (r.scheduledAt ?? r.queuedAt).getTime() < t && (r.finishedAt === null || r.finishedAt.getTime() + WORKFLOW_CLOSE_MARGIN_MS > t),
    );
  const missed = (t: Date, reason: FireReason, run: FiredRun | null = null): FireRecord => ({
    scheduledAt: t.toISOString(),
    outcome: 'missed',
    runId: run?.id ?? null,
    runStatus: run?.status ?? null,
    startedAt: null,
    latenessMs: null,
    reason,
  });
  const ran = (ms: number, run: FiredRun): FireRecord => ({
    scheduledAt: new Date(ms).toISOString(),
    outcome: 'ran',
    runId: run.id,
    runStatus: run.status,
    startedAt: run.queuedAt.toISOString(),
    latenessMs: run.queuedAt.getTime() - ms,
    reason: null,
  });
  const expected = new Set(w.expected.map((t) => t.getTime()));
  const records: FireRecord[] = [];
  for (const t of w.unexcluded) {
    const ms = t.getTime();
    if (ms > until.getTime()) continue;
    const run = byTime.get(ms);
    if (!expected.has(ms)) {
      records.push({ ...missed(t, 'excluded'), outcome: 'excluded' });
    } else if (run?.refused) {
      // The worker recorded the fire without running it (see RunRecorder.ensureRun, PipelineRecorder.openPipelineRun).
      records.push(missed(t, run.refused, run));
    } else if (run) {
      records.push(ran(ms, run));
    } else if (w.now - ms > STARTING_MS) {
      const reason: FireReason = pausedAt(ms, true)
        ? 'task_disabled'
        : pausedAt(ms, false)
          ? 'paused'
          : (w.overlap ?? 'skip') === 'skip' && overlapping(ms)
            ? 'overlap_skip'
            : 'outside_catchup_window';
      records.push(missed(t, reason));
    }
  }
  const spec = new Set(w.unexcluded.map((t) => t.getTime()));
  for (const r of runs) {
    const ms = (r.scheduledAt as Date | null)?.getTime();
    if (ms === undefined || ms < from.getTime() || ms > until.getTime() || spec.has(ms)) continue;
    records.push(ran(ms, r));
  }
  return records;
}

/** The reason a worker wrote on a fire it refused, from the run row (`cancelled`, never started, error `<reason>: …`). */
export function refusalOf(row: { status: string; error: string | null; started: boolean }): RefusalReason | null {
  if (row.status !== 'cancelled' || row.started) return null;
  const reason = /^(task_disabled|pipeline_deleted|params_invalid):/.exec(row.error ?? '')?.[1];
  return (reason as RefusalReason | undefined) ?? null;
}
