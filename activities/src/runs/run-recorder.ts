import type {
  EnsureRunResult,
  AlertDelivery,
  AlertSpec,
  AttemptStatus,
  CapturedStream,
  FinalizeResult,
  RunFinalization,
  TaskRunInput,
} from '@task-scheduler/contracts';
import { FREE_SLOTS, evaluateRunEnd, lockTenantAdmission, runsToWake } from '@task-scheduler/db';
import type { OutputStoreSummary } from '@task-scheduler/db';
import type { DataSource } from 'typeorm';
import { planAlertState } from '../alerts/alert-state';

export interface AttemptStart {
  runId: string;
  tenantId: string;
  shardIndex: number;
  attempt: number;
  workerIdentity: string;
  /** Shell attempts: how this worker isolates them, known before the task starts (so lost attempts show it too). */
  isolation?: 'sandbox' | 'none' | null;
}

export interface AttemptEnd {
  runId: string;
  shardIndex: number;
  attempt: number;
  status: Exclude<AttemptStatus, 'running'>;
  exitCode: number | null;
  httpStatus: number | null;
  error: string | null;
  stdout: CapturedStream | null;
  stderr: CapturedStream | null;
  /** Shell attempts: `sandbox`, or `none` when the worker runs with SHELL_ISOLATION=none. */
  isolation?: 'sandbox' | 'none' | null;
  /** Shell attempts: the limit the attempt crossed (`memory`, `processes`, …). */
  resourceLimit?: string | null;
  /** What the run output store holds of the attempt's output (null: the worker streams none). */
  outputStore?: OutputStoreSummary | null;
}

/** The first fourteen columns of a run row written by the worker, in the order both of its inserts list them. */
function runRowValues(
  input: TaskRunInput & { runId: string },
  workflowId: string,
  temporalRunId: string,
  scheduledAt: string | null,
): unknown[] {
  return [
    input.runId,
    input.tenantId,
    input.taskId,
    input.taskVersion,
    input.trigger,
    workflowId,
    temporalRunId,
    input.shardCount ?? 1,
    input.priority ?? 0,
    input.scheduleId ?? null,
    scheduledAt,
    input.pipeline?.pipelineRunId ?? null,
    input.pipeline?.stepKey ?? null,
    input.pipeline?.itemIndex ?? null,
  ];
}

const FINAL = `('succeeded', 'failed', 'cancelled', 'timed_out')`;

/**
 * Writes run and attempt records. Every write is idempotent, because an
 * activity that calls it may be retried after its write committed: a retried
 * write converges on the same rows instead of duplicating them, and a final
 * status, once written, is never overwritten.
 */
export class RunRecorder {
  constructor(private readonly db: DataSource) {}

  /**
   * Makes sure the run row exists. The API inserts a manual run before
   * starting its workflow (this covers a start whose commit failed); a
   * schedule's fire is recorded here first, with its nominal time. A fire
   * already recorded by another workflow (a backfill over a fire that ran)
   * is reported as a duplicate: the unique (schedule, scheduled time) index
   * decides, so one fire never makes two runs.
   *
   * A run not recorded yet (a schedule's fire, or a manual start whose commit
   * failed) of a task that is disabled or deleted by now is recorded final,
   * `cancelled` with the error `task_disabled: …` or `task_deleted: …`, and
   * reported as a duplicate of itself: the workflow then runs nothing. This
   * holds when the schedule was unpaused from outside (Temporal UI) before
   * the reconciler paused it again. A fire checked while a disable is still
   * being committed runs: it fired before the disable answered.
   */
  async ensureRun(
    input: TaskRunInput & { runId: string },
    workflowId: string,
    temporalRunId: string,
    scheduledAt: string | null = null,
  ): Promise<EnsureRunResult> {
    const existing = async (): Promise<string | null> => {
      if (!input.scheduleId || !scheduledAt) return null;
      const rows: { id: string }[] = await this.db.query(`SELECT id FROM runs WHERE schedule_id = $1 AND scheduled_at = $2 AND id <> $3`, [
        input.scheduleId,
        scheduledAt,
        input.runId,
      ]);
      return rows[0]?.id ?? null;
    };
    try {
      const refused = await this.refuseUnrunnable(input, workflowId, temporalRunId, scheduledAt);
      if (refused) return { duplicateOf: input.runId };
      await this.db.query(
        `INSERT INTO runs (id, tenant_id, task_id, task_version, trigger, status, workflow_id, temporal_run_id, shard_count,
                           priority, schedule_id, scheduled_at, pipeline_run_id, pipeline_step_key, item_index)
         VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (id) DO UPDATE SET temporal_run_id = EXCLUDED.temporal_run_id, updated_at = now()
         WHERE runs.temporal_run_id IS DISTINCT FROM EXCLUDED.temporal_run_id`,
        runRowValues(input, workflowId, temporalRunId, scheduledAt),
      );
    } catch (err) {
      const racedBy = (err as { code?: string }).code === '23505' ? await existing() : null;
      if (racedBy) return { duplicateOf: racedBy };
      throw err;
    }
    return { duplicateOf: null };
  }

  /**
   * Whether the run is recorded final without running (see {@link ensureRun}):
   * true when this call or an earlier attempt of it recorded it so.
   */
  private async refuseUnrunnable(
    input: TaskRunInput & { runId: string },
    workflowId: string,
    temporalRunId: string,
    scheduledAt: string | null,
  ): Promise<boolean> {
    const [run]: { error: string | null; skipped: boolean }[] = await this.db.query(
      `SELECT error, status = 'cancelled' AND admitted_at IS NULL AND (error LIKE 'task_disabled:%' OR error LIKE 'task_deleted:%') AS skipped
         FROM runs WHERE id = $1`,
      [input.runId],
    );
    if (run) return run.skipped; // recorded already: by the API, or by an earlier attempt of this activity
    // No row lock: the worker's database role may read these columns of tasks, not lock or change its rows.
    const [task]: { enabled: boolean; deleted: boolean }[] = await this.db.query(
      `SELECT enabled, deleted_at IS NOT NULL AS deleted FROM tasks WHERE id = $1`,
      [input.taskId],
    );
    if (task && task.enabled && !task.deleted) return false;
    const error =
      !task || task.deleted
        ? 'task_deleted: the task was deleted before this run started; nothing ran'
        : 'task_disabled: the task was disabled when this run was due; nothing ran';
    const inserted: unknown[] = await this.db.query(
      `INSERT INTO runs (id, tenant_id, task_id, task_version, trigger, status, workflow_id, temporal_run_id, shard_count,
                         priority, schedule_id, scheduled_at, pipeline_run_id, pipeline_step_key, item_index, error, finished_at)
       VALUES ($1, $2, $3, $4, $5, 'cancelled', $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, now())
       ON CONFLICT DO NOTHING RETURNING id`,
      [...runRowValues(input, workflowId, temporalRunId, scheduledAt), error],
    );
    // Nothing inserted: another workflow holds this fire (a backfill); the caller's insert reports it.
    return inserted.length > 0;
  }

  /**
   * Takes one of the tenant's `max_concurrent_runs` slots for the run, or
   * reports that none is free (the run stays `queued` and waits). Admission
   * is serialised per tenant by a transaction-scoped advisory lock; a slot is
   * held exactly while the run is admitted and not final, so finalizing a run
   * frees its slot in the same transaction that records the outcome.
   */
  async acquireSlot(runId: string, tenantId: string): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      // The run's row before the tenant's lock, the order finalizeRun takes them in (its row, then the lock in
      // runsToWake): a run cancelled while its request waits for the lock would otherwise deadlock the two.
      await tx.query(`SELECT 1 FROM runs WHERE id = $1 FOR NO KEY UPDATE`, [runId]);
      await lockTenantAdmission(tx, tenantId);
      const rows: { admitted: boolean; final: boolean; free: number }[] = await tx.query(
        `SELECT r.admitted_at IS NOT NULL AS admitted, r.status IN ${FINAL} AS final,
                ${FREE_SLOTS} AS free
           FROM runs r JOIN tenants t ON t.id = r.tenant_id
          WHERE r.id = $1 AND r.tenant_id = $2`,
        [runId, tenantId],
      );
      const row = rows[0];
      if (!row) throw new Error(`run ${runId} is not recorded`);
      if (row.admitted || row.final) return true;
      if (row.free <= 0) {
        // Marked under the tenant's lock: a run ending after this sees the mark and wakes this one (runsToWake).
        // Once: a re-check that is refused again writes nothing.
        await tx.query(`UPDATE runs SET slot_refused_at = now(), updated_at = now() WHERE id = $1 AND slot_refused_at IS NULL`, [runId]);
        return false;
      }
      await tx.query(`UPDATE runs SET admitted_at = now(), updated_at = now() WHERE id = $1`, [runId]);
      return true;
    });
  }

  /** Records that an attempt started; earlier attempts of the shard still marked running were lost with their worker. */
  /** Records the attempt's start; resolves with the run's task id (for the worker's log lines). */
  async startAttempt(a: AttemptStart): Promise<{ taskId: string | null }> {
    return this.db.transaction(async (tx) => {
      await tx.query(
        `UPDATE run_attempts SET status = 'abandoned', finished_at = now(),
                error = coalesce(error, 'attempt lost: its worker stopped heartbeating')
          WHERE run_id = $1 AND shard_index = $2 AND attempt < $3 AND status = 'running'`,
        [a.runId, a.shardIndex, a.attempt],
      );
      await tx.query(
        `INSERT INTO run_attempts (run_id, tenant_id, shard_index, attempt, status, worker_identity, isolation)
         VALUES ($1, $2, $3, $4, 'running', $5, $6)
         ON CONFLICT (run_id, shard_index, attempt) DO UPDATE SET worker_identity = EXCLUDED.worker_identity,
                isolation = EXCLUDED.isolation
         WHERE run_attempts.status = 'running'`,
        [a.runId, a.tenantId, a.shardIndex, a.attempt, a.workerIdentity, a.isolation ?? null],
      );
      await tx.query(
        `UPDATE runs SET status = 'running', attempts = greatest(attempts, $2), worker_identity = $3,
                started_at = coalesce(started_at, now()), updated_at = now()
          WHERE id = $1 AND status NOT IN ${FINAL}`,
        [a.runId, a.attempt, a.workerIdentity],
      );
      const rows: { task_id: string }[] = await tx.query(`SELECT task_id FROM runs WHERE id = $1`, [a.runId]);
      return { taskId: rows[0]?.task_id ?? null };
    });
  }

  async finishAttempt(e: AttemptEnd): Promise<void> {
    await this.db.query(
      `UPDATE run_attempts SET status = $4, exit_code = $5, http_status = $6, error = $7,
              stdout = $8, stdout_truncated = $9, stderr = $10, stderr_truncated = $11, finished_at = now(),
              isolation = $12, resource_limit = $13, output_store = $14
        WHERE run_id = $1 AND shard_index = $2 AND attempt = $3 AND status = 'running'`,
      [
        e.runId,
        e.shardIndex,
        e.attempt,
        e.status,
        e.exitCode,
        e.httpStatus,
        e.error,
        e.stdout?.text ?? null,
        e.stdout?.truncated ?? false,
        e.stderr?.text ?? null,
        e.stderr?.truncated ?? false,
        e.isolation ?? null,
        e.resourceLimit ?? null,
        e.outputStore ? JSON.stringify(e.outputStore) : null,
      ],
    );
  }

  /**
   * Writes the run's final status (and its shards') exactly once; later calls
   * change nothing. A failed or timed-out run becomes a dead letter. Returns
   * the tenant's runs that were refused a slot and still wait (runsToWake),
   * by priority and then queue time, as many as there are free slots now.
   */
  async finalizeRun(f: RunFinalization): Promise<FinalizeResult> {
    return this.db.transaction(async (tx) => {
      await tx.query(
        `UPDATE run_attempts SET status = 'abandoned', finished_at = now(),
                error = coalesce(error, 'attempt did not report an end before the run finished')
          WHERE run_id = $1 AND status = 'running'`,
        [f.runId],
      );
      await tx.query(
        `UPDATE runs SET status = $2, exit_code = $3, http_status = $10, error = $4, outputs = $11,
                stdout = $5, stdout_truncated = $6, stderr = $7, stderr_truncated = $8,
                attempts = greatest(attempts, $9, (SELECT coalesce(max(attempt), 0) FROM run_attempts WHERE run_id = $1)),
                dead_letter = $2 IN ('failed', 'timed_out'),
                finished_at = now(), updated_at = now()
          WHERE id = $1 AND status NOT IN ${FINAL}`,
        [
          f.runId,
          f.status,
          f.exitCode,
          f.error,
          f.stdout?.text ?? null,
          f.stdout?.truncated ?? false,
          f.stderr?.text ?? null,
          f.stderr?.truncated ?? false,
          f.attempts,
          f.httpStatus ?? null,
          // jsonb from its JSON text: node-postgres would write a JS array as a PostgreSQL array literal.
          f.outputs ? JSON.stringify(f.outputs) : null,
        ],
      );
      for (const s of f.shards ?? []) {
        await tx.query(
          `INSERT INTO run_shards (run_id, shard_index, tenant_id, status, attempts, exit_code, http_status, error,
                                   stdout, stdout_truncated, stderr, stderr_truncated)
           SELECT $1, $2, tenant_id, $3,
                  greatest($4, (SELECT coalesce(max(attempt), 0) FROM run_attempts WHERE run_id = $1 AND shard_index = $2)), $5, $6, $7, $8, $9, $10, $11 FROM runs WHERE id = $1
           ON CONFLICT (run_id, shard_index) DO NOTHING`,
          [
            f.runId,
            s.shardIndex,
            s.status,
            s.attempts,
            s.exitCode,
            s.httpStatus,
            s.error,
            s.stdout?.text ?? null,
            s.stdout?.truncated ?? false,
            s.stderr?.text ?? null,
            s.stderr?.truncated ?? false,
          ],
        );
      }
      // The tenant's alert rules (docs/alerts.md) count the run with its final record, once per run.
      await evaluateRunEnd(tx, f.runId);
      const wakeWorkflowIds = await runsToWake(tx, f.runId);
      const [{ attempts }]: { attempts: number }[] = await tx.query(`SELECT attempts FROM runs WHERE id = $1`, [f.runId]);
      return { wakeWorkflowIds, attempts };
    });
  }

  /**
   * Decides whether a finished run calls the task's legacy alert webhook (`alerts` of the task or tenant): a final failure
   * alerts unless the same task already alerted within its window (then it
   * is counted as suppressed), and the first success after an alerted
   * failure sends a recovery when asked for. Idempotent per run: a retried
   * call returns the same decision.
   */
  async planAlert(runId: string): Promise<AlertDelivery | null> {
    return this.db.transaction(async (tx) => {
      const rows: {
        status: string;
        task_id: string;
        tenant_id: string;
        task_name: string;
        task_alerts: AlertSpec | null;
        tenant_alerts: AlertSpec | null;
        error: string | null;
        attempts: number;
        exit_code: number | null;
        http_status: number | null;
        workflow_id: string;
        trigger: string;
        finished_at: Date | null;
      }[] = await tx.query(
        `SELECT r.status, r.task_id, r.tenant_id, k.name AS task_name, k.alerts AS task_alerts, t.alert_settings AS tenant_alerts,
                r.error, r.attempts, r.exit_code, r.http_status, r.workflow_id, r.trigger, r.finished_at
           FROM runs r JOIN tasks k ON k.id = r.task_id JOIN tenants t ON t.id = r.tenant_id WHERE r.id = $1`,
        [runId],
      );
      const run = rows[0];
      const spec = run?.task_alerts ?? run?.tenant_alerts;
      if (!run || !spec || run.status === 'cancelled' || run.status === 'queued' || run.status === 'running') return null;
      const delivery = (kind: AlertDelivery['kind'], suppressed: number): AlertDelivery => ({
        url: spec.webhookUrl,
        kind,
        idempotencyKey: `alert-${runId}`,
        payload: {
          kind,
          tenantId: run.tenant_id,
          taskId: run.task_id,
          taskName: run.task_name,
          runId,
          status: run.status,
          trigger: run.trigger,
          attempts: run.attempts,
          exitCode: run.exit_code,
          httpStatus: run.http_status,
          error: run.error,
          workflowId: run.workflow_id,
          finishedAt: run.finished_at?.toISOString() ?? null,
          suppressedSinceLastAlert: suppressed,
        },
      });
      const alert = await planAlertState(
        tx,
        { table: 'alert_states', key: 'task_id' },
        { id: run.task_id, tenantId: run.tenant_id, runId, failed: run.status !== 'succeeded', spec },
      );
      return alert && delivery(alert.kind, alert.suppressed);
    });
  }
}
