/* The runs a schedule's fires recorded: rows of `runs` for a task schedule, of `pipeline_runs` for a
 * pipeline schedule. Both tables hold a fire at most once (unique (schedule_id, scheduled_at)). */
import { PipelineRunEntity, RunEntity } from '@task-scheduler/db';
import type { ScheduleEntity } from '@task-scheduler/db';
import type { EntityManager } from 'typeorm';
import { refusalOf } from './fire-classification';
import type { FiredRun } from './fire-classification';

/** The run a fire started, as the trigger answers it. */
export type FireRun = { kind: 'run'; run: RunEntity } | { kind: 'pipeline_run'; run: PipelineRunEntity };

/** What a schedule shows of its latest fire. */
export interface LastFire {
  id: string;
  status: string;
  scheduledAt: Date | null;
  finishedAt: Date | null;
  error: string | null;
}

const isPipeline = (s: ScheduleEntity): boolean => s.pipelineId !== null;

/** The table of the schedule's runs, by a name SQL may take as is (never from input). */
const tableOf = (s: ScheduleEntity): 'runs' | 'pipeline_runs' => (isPipeline(s) ? 'pipeline_runs' : 'runs');

/**
 * Runs of the window [from, until]: those scheduled in it, and those queued by its end that had not
 * finished by `from − marginMs` (a run still going when the window opens can explain an overlap skip).
 */
export async function windowRuns(m: EntityManager, s: ScheduleEntity, from: Date, until: Date, marginMs: number): Promise<FiredRun[]> {
  // `started`: the worker ran the fire (a task run got a slot, a pipeline run opened); a refused fire did neither.
  const started = isPipeline(s) ? 'started_at IS NOT NULL' : 'admitted_at IS NOT NULL';
  const rows: {
    id: string;
    status: string;
    scheduled_at: Date | null;
    queued_at: Date;
    finished_at: Date | null;
    error: string | null;
    started: boolean;
  }[] = await m.query(
    `SELECT id, status, scheduled_at, queued_at, finished_at, error, ${started} AS started FROM ${tableOf(s)}
        WHERE schedule_id = $1
          AND ((queued_at <= $3 AND (finished_at IS NULL OR finished_at >= $2)) OR scheduled_at BETWEEN $4 AND $3)`,
    [s.id, new Date(from.getTime() - marginMs), until, from],
  );
  return rows.map((r) => ({
    id: r.id,
    status: r.status,
    scheduledAt: r.scheduled_at,
    queuedAt: r.queued_at,
    finishedAt: r.finished_at,
    refused: refusalOf(r),
  }));
}

/** The nominal times in [start, end] that already have a run. */
export async function firedTimes(m: EntityManager, s: ScheduleEntity, start: Date, end: Date): Promise<Set<number>> {
  const rows: { scheduled_at: Date }[] = await m.query(
    `SELECT scheduled_at FROM ${tableOf(s)} WHERE schedule_id = $1 AND scheduled_at >= $2 AND scheduled_at <= $3`,
    [s.id, start, end],
  );
  return new Set(rows.map((r) => r.scheduled_at.getTime()));
}

/** The run with the latest scheduled time. */
export function lastFire(m: EntityManager, s: ScheduleEntity): Promise<LastFire | null> {
  const where = { where: { scheduleId: s.id }, order: { scheduledAt: 'DESC' as const } };
  return isPipeline(s) ? m.getRepository(PipelineRunEntity).findOne(where) : m.getRepository(RunEntity).findOne(where);
}

/** The run the fire with this workflow id recorded, once it has. */
export async function runOfWorkflow(m: EntityManager, s: ScheduleEntity, workflowId: string): Promise<FireRun | undefined> {
  const where = { workflowId, tenantId: s.tenantId };
  if (isPipeline(s)) {
    const run = await m.getRepository(PipelineRunEntity).findOneBy(where);
    return run ? { kind: 'pipeline_run', run } : undefined;
  }
  const run = await m.getRepository(RunEntity).findOneBy(where);
  return run ? { kind: 'run', run } : undefined;
}
