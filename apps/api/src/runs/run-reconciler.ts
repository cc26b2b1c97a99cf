import { Inject, Injectable, Logger } from '@nestjs/common';
import type { OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { AppConfig } from '@task-scheduler/config';
import { FINAL_RUN_STATUSES } from '@task-scheduler/contracts';
import type { RunStatus, TaskRunResult } from '@task-scheduler/contracts';
import { evaluateRunEnd, runsToWake } from '@task-scheduler/db';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { DataSource } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import { PeriodicJob } from '../common/periodic-job';
import { wakeWaitingRuns } from '../common/temporal';
import { APP_CONFIG, TEMPORAL_CLIENT } from '../infra/tokens';
import { MetricsService } from '../metrics/metrics.service';

/** Advisory-lock key: one API process reconciles runs at a time (the schedule reconciler has its own). */
const RUN_RECONCILE_LOCK = 0x72_75_6e_73; // 'runs'
/** Runs checked per pass, oldest change first; the rest wait for the next pass. */
const BATCH = 200;

export interface RunReconcileReport {
  checked: number;
  /** Runs ended: run id, the status given, and why. */
  ended: { runId: string; status: RunStatus; reason: string }[];
  errors: string[];
}

/** How a closed (or missing) workflow ends its run's record. */
export function outcomeOfClosedWorkflow(
  workflowStatus: string | null,
  result: TaskRunResult | null,
  reason: string | null,
): { status: RunStatus; error: string } {
  switch (workflowStatus) {
    case null:
      return {
        status: 'failed',
        error: 'its workflow no longer exists (deleted, or past Temporal retention); the run was ended by the reconciler',
      };
    case 'COMPLETED':
      // The workflow reached its end; only its final record write was lost.
      if (result && (FINAL_RUN_STATUSES as readonly string[]).includes(result.status)) {
        return { status: result.status as RunStatus, error: result.error ?? '' };
      }
      return { status: 'failed', error: 'its workflow completed without a final status; the run was ended by the reconciler' };
    case 'TERMINATED':
      return { status: 'cancelled', error: `its workflow was terminated from outside${reason ? `: ${reason}` : ''}` };
    case 'CANCELLED':
      return { status: 'cancelled', error: 'its workflow was cancelled before it recorded the run' };
    case 'TIMED_OUT':
      return { status: 'timed_out', error: 'its workflow timed out (execution timeout) before it recorded the run' };
    default:
      return { status: 'failed', error: `its workflow ended ${workflowStatus.toLowerCase()} before it recorded the run` };
  }
}

/**
 * Ends the records of runs whose workflow has closed without writing them (terminated from outside, in the
 * Temporal UI or CLI; a finalisation lost) or no longer exists, with the workflow's real outcome, so they free
 * their tenant's concurrency slot and show how they ended. Every RUN_RECONCILE_SECONDS, under an advisory lock
 * (one API process at a time), over runs `queued` or `running` whose record has not changed for
 * RUN_RECONCILE_MIN_AGE_SECONDS. Runs whose workflow is running are left alone, however old.
 */
@Injectable()
export class RunReconciler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('RunReconciler');
  private readonly job = new PeriodicJob('run reconciliation', this.logger, () => this.reconcile());
  /** Where the next periodic pass starts (the last run id looked at); null: from the start. */
  private cursor: string | null = null;

  constructor(
    private readonly db: DataSource,
    @Inject(TEMPORAL_CLIENT) private readonly temporal: Client,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly audit: AuditService,
  ) {}

  onApplicationBootstrap(): void {
    this.job.start(this.config.RUN_RECONCILE_SECONDS);
  }

  onApplicationShutdown(): Promise<void> {
    return this.job.stop();
  }

  /** One pass; null when another process holds the lock. `tenantId` limits it to one tenant's runs. */
  async reconcile(opts: { minAgeSeconds?: number; tenantId?: string } = {}): Promise<RunReconcileReport | null> {
    return this.db.transaction(async (tx) => {
      const [{ locked }] = await tx.query(`SELECT pg_try_advisory_xact_lock($1) AS locked`, [RUN_RECONCILE_LOCK]);
      if (!locked) return null;
      const report: RunReconcileReport = { checked: 0, ended: [], errors: [] };
      // The periodic pass walks on from where the last one stopped (by id, wrapping around): runs whose workflow
      // is running are left as they are, so oldest-first would look at the same 200 waiting runs of one busy
      // tenant every pass and never reach another tenant's orphan. A pass for one tenant starts at the beginning.
      const after = opts.tenantId ? null : this.cursor;
      const rows: { id: string; tenant_id: string; workflow_id: string }[] = await tx.query(
        `SELECT id, tenant_id, workflow_id FROM runs
          WHERE status IN ('queued', 'running') AND updated_at < now() - make_interval(secs => $1)
            AND ($2::uuid IS NULL OR tenant_id = $2) AND ($3::uuid IS NULL OR id > $3)
          ORDER BY id LIMIT ${BATCH}`,
        [opts.minAgeSeconds ?? this.config.RUN_RECONCILE_MIN_AGE_SECONDS, opts.tenantId ?? null, after],
      );
      if (!opts.tenantId) this.cursor = rows.length === BATCH ? rows[rows.length - 1].id : null;
      for (const row of rows) {
        report.checked++;
        try {
          const ended = await this.checkOne(row.id, row.tenant_id, row.workflow_id);
          if (ended) {
            report.ended.push({ runId: row.id, ...ended });
            this.metrics.runRepaired(ended.status);
            this.logger.warn(
              { runId: row.id, workflowId: row.workflow_id, ...ended },
              'run ended by the reconciler: its workflow had closed',
            );
          }
        } catch (err) {
          report.errors.push(`${row.id}: ${(err as Error).message}`);
        }
      }
      return report;
    });
  }

  private async checkOne(runId: string, tenantId: string, workflowId: string): Promise<{ status: RunStatus; reason: string } | null> {
    const handle = this.temporal.workflow.getHandle(workflowId);
    let workflowStatus: string | null;
    let reason: string | null = null;
    let result: TaskRunResult | null = null;
    try {
      const described = await handle.describe();
      workflowStatus = described.status.name;
      if (workflowStatus === 'RUNNING' || workflowStatus === 'CONTINUED_AS_NEW') return null;
      if (workflowStatus === 'COMPLETED') result = (await handle.result()) as TaskRunResult;
      if (workflowStatus === 'TERMINATED') {
        const events = (await handle.fetchHistory()).events ?? [];
        reason =
          events.find((e) => e.workflowExecutionTerminatedEventAttributes)?.workflowExecutionTerminatedEventAttributes?.reason ?? null;
      }
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      workflowStatus = null;
    }
    const { status, error } = outcomeOfClosedWorkflow(workflowStatus, result, reason);
    let wake: string[] = [];
    const ended = await this.db.transaction(async (tx) => {
      const [rows]: [{ id: string }[], number] = await tx.query(
        `UPDATE runs SET status = $2, error = nullif($3, ''), finished_at = now(), updated_at = now(),
                dead_letter = $2 IN ('failed', 'timed_out')
          WHERE id = $1 AND status IN ('queued', 'running') RETURNING id`,
        [runId, status, error],
      );
      if (rows.length === 0) return false; // finished meanwhile: its own record stands
      await tx.query(
        `UPDATE run_attempts SET status = 'abandoned', finished_at = now(),
                error = coalesce(error, 'attempt did not report an end before its workflow closed')
          WHERE run_id = $1 AND status = 'running'`,
        [runId],
      );
      // As the run's own end would: its task's alert rules count it, and the tenant's audit log says who ended it.
      await evaluateRunEnd(tx, runId);
      await this.audit.recordSystem(tx, tenantId, 'system:run-reconciler', {
        action: 'run.reconciled',
        targetType: 'run',
        targetId: runId,
        details: { status, reason: error, workflowId, workflowStatus: workflowStatus ?? 'not found' },
      });
      wake = await runsToWake(tx, runId);
      return true;
    });
    // Its slot is free: the runs waiting for one start now, not at their next re-check (as after a run's own end).
    await wakeWaitingRuns(this.temporal, wake, this.logger);
    return ended ? { status, reason: error } : null;
  }
}
