import type { AttemptStatus, CapturedStream, RunFinalization, TaskRunInput } from '@task-scheduler/contracts';
import type { DataSource } from 'typeorm';

export interface AttemptStart {
  runId: string;
  tenantId: string;
  attempt: number;
  workerIdentity: string;
}

export interface AttemptEnd {
  runId: string;
  attempt: number;
  status: Exclude<AttemptStatus, 'running'>;
  exitCode: number | null;
  error: string | null;
  stdout: CapturedStream | null;
  stderr: CapturedStream | null;
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
   * Makes sure the run row exists. The API inserts it before starting the
   * workflow; this covers the case where the workflow started but the API's
   * commit did not, so a started run is never unrecorded.
   */
  async ensureRun(input: TaskRunInput, workflowId: string, temporalRunId: string): Promise<void> {
    await this.db.query(
      `INSERT INTO runs (id, tenant_id, task_id, task_version, trigger, status, workflow_id, temporal_run_id)
       VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7)
       ON CONFLICT (id) DO UPDATE SET temporal_run_id = EXCLUDED.temporal_run_id, updated_at = now()
       WHERE runs.temporal_run_id IS DISTINCT FROM EXCLUDED.temporal_run_id`,
      [input.runId, input.tenantId, input.taskId, input.taskVersion, input.trigger, workflowId, temporalRunId],
    );
  }

  /** Records that an attempt started; earlier attempts still marked running were lost with their worker. */
  async startAttempt(a: AttemptStart): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query(
        `UPDATE run_attempts SET status = 'abandoned', finished_at = now(),
                error = coalesce(error, 'attempt lost: its worker stopped heartbeating')
          WHERE run_id = $1 AND attempt < $2 AND status = 'running'`,
        [a.runId, a.attempt],
      );
      await tx.query(
        `INSERT INTO run_attempts (run_id, tenant_id, attempt, status, worker_identity)
         VALUES ($1, $2, $3, 'running', $4)
         ON CONFLICT (run_id, attempt) DO UPDATE SET worker_identity = EXCLUDED.worker_identity
         WHERE run_attempts.status = 'running'`,
        [a.runId, a.tenantId, a.attempt, a.workerIdentity],
      );
      await tx.query(
        `UPDATE runs SET status = 'running', attempts = greatest(attempts, $2), worker_identity = $3,
                started_at = coalesce(started_at, now()), updated_at = now()
          WHERE id = $1 AND status NOT IN ${FINAL}`,
        [a.runId, a.attempt, a.workerIdentity],
      );
    });
  }

  async finishAttempt(e: AttemptEnd): Promise<void> {
    await this.db.query(
      `UPDATE run_attempts SET status = $3, exit_code = $4, error = $5,
              stdout = $6, stdout_truncated = $7, stderr = $8, stderr_truncated = $9, finished_at = now()
        WHERE run_id = $1 AND attempt = $2 AND status = 'running'`,
      [
        e.runId,
        e.attempt,
        e.status,
        e.exitCode,
        e.error,
        e.stdout?.text ?? null,
        e.stdout?.truncated ?? false,
        e.stderr?.text ?? null,
        e.stderr?.truncated ?? false,
      ],
    );
  }

  /** Writes the run's final status exactly once; later calls change nothing. */
  async finalizeRun(f: RunFinalization): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query(
        `UPDATE run_attempts SET status = 'abandoned', finished_at = now(),
                error = coalesce(error, 'attempt did not report an end before the run finished')
          WHERE run_id = $1 AND status = 'running'`,
        [f.runId],
      );
      await tx.query(
        `UPDATE runs SET status = $2, exit_code = $3, error = $4,
                stdout = $5, stdout_truncated = $6, stderr = $7, stderr_truncated = $8,
                attempts = greatest(attempts, $9, (SELECT coalesce(max(attempt), 0) FROM run_attempts WHERE run_id = $1)),
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
        ],
      );
    });
  }
}
