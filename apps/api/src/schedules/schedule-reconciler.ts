import { Inject, Injectable, Logger } from '@nestjs/common';
import type { OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { AppConfig } from '@task-scheduler/config';
import { ScheduleEntity } from '@task-scheduler/db';
import { Client, ScheduleNotFoundError } from '@temporalio/client';
import { DataSource, IsNull } from 'typeorm';
import { APP_CONFIG, TEMPORAL_CLIENT } from '../infra/tokens';
import { MetricsService } from '../metrics/metrics.service';
import { EGRESS_FORBIDDEN_NOTE, SPEC_ENCODING, TASK_DISABLED_NOTE, TENANT_SUSPENDED_NOTE, effectivePause } from './schedule-translator';
import type { DesiredSchedule } from './schedule-translator';
import { SchedulesService } from './schedules.service';
import { PeriodicJob } from '../common/periodic-job';

/** Advisory-lock key: one API process reconciles at a time. */
const RECONCILE_LOCK = 7_240_501;
/**
 * A Temporal schedule without a row is only deleted once it is this old: a
 * create holds its row uncommitted while Temporal already has the schedule
 * (for well under a second; should it take longer, the next pass recreates it).
 */
const ORPHAN_GRACE_MS = 15_000;

export interface ReconcileReport {
  checked: number;
  created: string[];
  updated: string[];
  pauseFixed: string[];
  /** Paused in Temporal (its UI or CLI, or pauseOnFailure after a failed run): taken into the row. */
  adoptedPause: string[];
  /** Resumed in Temporal (its UI or CLI): taken into the row. */
  adoptedResume: string[];
  deletedOrphans: string[];
  errors: string[];
}

/**
 * Keeps Temporal's schedules equal to the rows: at API start and every
 * SCHEDULE_RECONCILE_SECONDS, it recreates a schedule Temporal lost (a dev
 * server restarted without persistence, a schedule deleted behind the
 * product's back), updates one Temporal holds an older version of, fixes a
 * pause state that disagrees, and deletes Temporal schedules of this
 * deployment that have no live row (left by a commit that failed after
 * Temporal accepted). Every repair is logged and written to the schedule's
 * event history.
 */
@Injectable()
export class ScheduleReconciler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('ScheduleReconciler');
  private readonly job = new PeriodicJob('schedule reconciliation', this.logger, () => this.reconcile());

  constructor(
    private readonly db: DataSource,
    private readonly schedules: SchedulesService,
    @Inject(TEMPORAL_CLIENT) private readonly temporal: Client,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {}

  onApplicationBootstrap(): void {
    this.job.start(this.config.SCHEDULE_RECONCILE_SECONDS, { runNow: true });
  }

  onApplicationShutdown(): Promise<void> {
    return this.job.stop();
  }

  /** One pass over every schedule of this deployment; returns what it repaired (null when another process holds the lock). */
  async reconcile(): Promise<ReconcileReport | null> {
    return this.db.transaction(async (tx) => {
      const [{ locked }] = await tx.query(`SELECT pg_try_advisory_xact_lock($1) AS locked`, [RECONCILE_LOCK]);
      if (!locked) return null;
      const report: ReconcileReport = {
        checked: 0,
        created: [],
        updated: [],
        pauseFixed: [],
        adoptedPause: [],
        adoptedResume: [],
        deletedOrphans: [],
        errors: [],
      };
      const prefix = `${this.config.TASK_QUEUE_PREFIX}.schedule.`;
      const previewPrefix = `${this.config.TASK_QUEUE_PREFIX}.preview.`;
      const rows = await tx
        .getRepository(ScheduleEntity)
        .createQueryBuilder('s')
        .where('s.deleted_at IS NULL AND starts_with(s.temporal_schedule_id, :prefix)', { prefix })
        .getMany();
      for (const listed of rows) {
        report.checked++;
        try {
          // Each schedule in its own transaction, on its row as it is now (locked: an API change in flight finishes first).
          await this.db.transaction(async (rowTx) => {
            const row = await rowTx
              .getRepository(ScheduleEntity)
              .findOne({ where: { id: listed.id, deletedAt: IsNull() }, lock: { mode: 'pessimistic_write' } });
            if (row) await this.reconcileOne(rowTx, row, report);
          });
        } catch (err) {
          report.errors.push(`${listed.id}: ${(err as Error).message}`);
        }
      }
      const live = new Set(rows.map((r) => r.temporalScheduleId));
      for await (const s of this.temporal.schedule.list()) {
        const isPreview = s.scheduleId.startsWith(previewPrefix); // a preview whose delete failed
        if (!(isPreview || s.scheduleId.startsWith(prefix)) || live.has(s.scheduleId)) continue;
        // A row deleted (or never committed) while Temporal kept the schedule: ours to remove, once past the grace.
        const row = await tx.getRepository(ScheduleEntity).findOneBy({ temporalScheduleId: s.scheduleId, deletedAt: IsNull() });
        if (row) continue;
        try {
          const handle = this.temporal.schedule.getHandle(s.scheduleId);
          if (Date.now() - (await handle.describe()).info.createdAt.getTime() < ORPHAN_GRACE_MS) continue;
          await handle.delete();
          report.deletedOrphans.push(s.scheduleId);
        } catch (err) {
          if (!(err instanceof ScheduleNotFoundError)) report.errors.push(`${s.scheduleId}: ${(err as Error).message}`);
        }
      }
      this.metrics.reconciled(
        {
          created: report.created.length,
          updated: report.updated.length,
          pause_fixed: report.pauseFixed.length,
          adopted_pause: report.adoptedPause.length,
          adopted_resume: report.adoptedResume.length,
          deleted_orphan: report.deletedOrphans.length,
        },
        report.errors.length,
      );
      const repaired = report.created.length + report.updated.length + report.pauseFixed.length + report.deletedOrphans.length;
      if (repaired + report.adoptedPause.length + report.adoptedResume.length + report.errors.length > 0)
        this.logger.log({ report }, 'schedules reconciled');
      return report;
    });
  }

  private async reconcileOne(tx: import('typeorm').EntityManager, listedRow: ScheduleEntity, report: ReconcileReport): Promise<void> {
    let row = listedRow;
    let description;
    try {
      description = await this.schedules.handle(row).describe();
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
      await this.schedules.sync(tx, row, { resetRemaining: true });
      await this.schedules.event(tx, row, 'repaired', 'recreated: Temporal had no such schedule');
      report.created.push(row.id);
      return;
    }
    let desired = await this.schedules.desiredOf(tx, row);
    const memo = (description.action as { memo?: Record<string, unknown> }).memo;
    // The pause state the API last wrote (see the memo in schedule-translator.ts): Temporal still holding it means
    // nobody changed it in Temporal since; a row that disagrees then lost a commit after Temporal took the change.
    const apiWroteState = typeof memo?.apiPaused === 'boolean' && memo.apiPaused === description.state.paused;
    // A pause or resume made in Temporal is taken into the row first, so that an update below does not undo it.
    let adopted = false;
    if (description.state.paused !== effectivePause(desired).paused && !apiWroteState) {
      adopted = await this.adoptPause(tx, desired, description.state, report);
      if (adopted) {
        row = await tx.getRepository(ScheduleEntity).findOneByOrFail({ id: row.id });
        desired = await this.schedules.desiredOf(tx, row);
      }
    }
    const want = effectivePause(desired);
    const stale =
      memo?.scheduleVersion !== row.version
        ? `updated: Temporal had version ${String(memo?.scheduleVersion)}, the row ${row.version}`
        : // A task change whose resync did not reach Temporal: its fires would still run the old task version.
          // (A pipeline schedule's fires read the pipeline's current version themselves: nothing to compare.)
          desired.target.kind === 'task' && memo?.taskVersion !== desired.target.task.version
          ? `updated: Temporal had task version ${String(memo?.taskVersion)}, the task ${desired.target.task.version}`
          : // Saved before crons were read by the product: Temporal's reading differs (`MON#2` fired every Monday).
            memo?.specEncoding !== SPEC_ENCODING
            ? `updated: spec re-sent in encoding ${SPEC_ENCODING} (crons as calendar rules)`
            : null;
    if (stale) {
      await this.schedules.sync(tx, row, { desired });
      await this.schedules.event(tx, row, 'repaired', stale);
      report.updated.push(row.id);
      return;
    }
    if (description.state.paused === want.paused) {
      // Adopted: the memo learns the state too, so the next change in Temporal is again told apart from the API's.
      if (adopted && memo?.apiPaused !== want.paused) await this.schedules.sync(tx, row, { desired });
      return;
    }
    // Left: a pause state the API wrote whose commit failed; a pause of ours Temporal still has (the tenant is active
    // again, the task enabled); or a resume in Temporal while the tenant is suspended, the task disabled or egress
    // forbidden, which must not start runs.
    await this.schedules.sync(tx, row, { desired });
    const why = !want.paused
      ? 'pause state set to running'
      : apiWroteState
        ? `paused again: ${want.note ?? 'paused'} (Temporal held a resume the API wrote but did not commit)`
        : `paused again: resumed in Temporal, but ${want.note ?? 'paused'}`;
    await this.schedules.event(tx, row, 'repaired', why);
    report.pauseFixed.push(row.id);
  }

  /**
   * Takes a pause or resume made in Temporal into the row, with an event
   * saying so (`cause`: `failure` for Temporal's pauseOnFailure pause,
   * `temporal` for one made in its UI or CLI; the note is Temporal's). Returns
   * false when it is not the schedule's own to change: a pause note of ours
   * (tenant, task, egress) Temporal kept, or a resume while such a pause is due.
   */
  private async adoptPause(
    tx: import('typeorm').EntityManager,
    desired: DesiredSchedule,
    state: { paused: boolean; note?: string },
    report: ReconcileReport,
  ): Promise<boolean> {
    const row = desired.schedule;
    const ourNotes = [TENANT_SUSPENDED_NOTE, TASK_DISABLED_NOTE, EGRESS_FORBIDDEN_NOTE];
    if (state.paused) {
      if (desired.tenantSuspended || ourNotes.includes(state.note ?? '')) return false;
      const failure = /^paused(,| due to) workflow /.test(state.note ?? '') || (row.policies.pauseOnFailure === true && !state.note);
      const note = state.note || (failure ? 'paused after a failed run' : 'paused in Temporal');
      await tx.getRepository(ScheduleEntity).update({ id: row.id }, { paused: true, pauseNote: note });
      await this.schedules.event(tx, row, 'paused', note, { cause: failure ? 'failure' : 'temporal' });
      report.adoptedPause.push(row.id);
      return true;
    }
    // Resumed in Temporal: the row's own pause ends, unless something else keeps it paused.
    const forced = effectivePause({ ...desired, schedule: { ...row, paused: false } as ScheduleEntity }).paused;
    if (forced || !row.paused) return false;
    await tx.getRepository(ScheduleEntity).update({ id: row.id }, { paused: false, pauseNote: null });
    await this.schedules.event(tx, row, 'resumed', state.note || null, { cause: 'temporal' });
    report.adoptedResume.push(row.id);
    return true;
  }
}
