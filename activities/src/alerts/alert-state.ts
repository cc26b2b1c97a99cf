import type { AlertSpec } from '@task-scheduler/contracts';
import type { EntityManager } from 'typeorm';

/** The window an alert suppresses further failures for, when the spec does not say. */
export const DEFAULT_ALERT_WINDOW_SECONDS = 3600;

/** What the alert state of a task or pipeline says when one of its runs ends. */
export interface AlertState {
  failing: boolean;
  /** The last alert was sent less than the spec's window ago. */
  withinWindow: boolean;
  lastAlertRunId: string | null;
  lastAlertSuppressed: number;
  suppressed: number;
}

/**
 * What a final run does to its alert state, and what it sends:
 * - `again`: this run alerted already (the call is a retry): the same alert, nothing written;
 * - `suppress`: a failure within the window of the last alert, counted once per run;
 * - `failure`: a failure that alerts; it carries the failures suppressed since the last alert;
 * - `recover`: the first success after failing; it sends a recovery only when the spec asks for one;
 * - `none`: a success while not failing.
 */
export type AlertDecision =
  | { kind: 'again'; alert: 'failure' | 'recovery'; suppressed: number }
  | { kind: 'suppress' }
  | { kind: 'failure'; suppressed: number }
  | { kind: 'recover'; send: boolean; suppressed: number }
  | { kind: 'none' };

export function decideAlert(state: AlertState, runId: string, failed: boolean, spec: Pick<AlertSpec, 'onRecovery'>): AlertDecision {
  if (state.lastAlertRunId === runId)
    return { kind: 'again', alert: failed ? 'failure' : 'recovery', suppressed: state.lastAlertSuppressed };
  if (failed) return state.failing && state.withinWindow ? { kind: 'suppress' } : { kind: 'failure', suppressed: state.suppressed };
  if (!state.failing) return { kind: 'none' };
  return { kind: 'recover', send: spec.onRecovery === true, suppressed: state.suppressed };
}

/**
 * The alert state of a task (`alert_states` by `task_id`) or of a pipeline
 * (`pipeline_alert_states` by `pipeline_id`); both have the same columns,
 * `*_run_id` naming a task run or a pipeline run.
 */
export type AlertStateTable = { table: 'alert_states'; key: 'task_id' } | { table: 'pipeline_alert_states'; key: 'pipeline_id' };

/**
 * Decides, in `tx`, the alert of the final run `runId` of the task or
 * pipeline `id`, and records it in its alert state (locked for the decision,
 * so two runs ending at once decide in turn). Idempotent per run: a retried
 * call returns the same alert. Returns the alert to send, or null.
 */
export async function planAlertState(
  tx: EntityManager,
  where: AlertStateTable,
  target: { id: string; tenantId: string; runId: string; failed: boolean; spec: AlertSpec },
): Promise<{ kind: 'failure' | 'recovery'; suppressed: number } | null> {
  // Table and column come from AlertStateTable's fixed names, never from input.
  const { table, key } = where;
  const { id, runId } = target;
  await tx.query(`INSERT INTO ${table} (${key}, tenant_id) VALUES ($1, $2) ON CONFLICT (${key}) DO NOTHING`, [id, target.tenantId]);
  const [row]: {
    failing: boolean;
    within_window: boolean;
    last_alert_run_id: string | null;
    last_alert_suppressed: number;
    suppressed: number;
  }[] = await tx.query(
    `SELECT failing, last_alert_run_id, last_alert_suppressed, suppressed,
            coalesce(last_alert_at > now() - make_interval(secs => $2), false) AS within_window
       FROM ${table} WHERE ${key} = $1 FOR UPDATE`,
    [id, target.spec.windowSeconds ?? DEFAULT_ALERT_WINDOW_SECONDS],
  );
  const decision = decideAlert(
    {
      failing: row.failing,
      withinWindow: row.within_window,
      lastAlertRunId: row.last_alert_run_id,
      lastAlertSuppressed: row.last_alert_suppressed,
      suppressed: row.suppressed,
    },
    runId,
    target.failed,
    target.spec,
  );
  switch (decision.kind) {
    case 'again':
      return { kind: decision.alert, suppressed: decision.suppressed };
    case 'none':
      return null;
    case 'suppress':
      // Counted once per run, also when this call is a retry of one that committed.
      await tx.query(
        `UPDATE ${table} SET suppressed = suppressed + 1, last_counted_run_id = $2, updated_at = now()
          WHERE ${key} = $1 AND last_counted_run_id IS DISTINCT FROM $2`,
        [id, runId],
      );
      return null;
    case 'failure':
      await tx.query(
        `UPDATE ${table} SET failing = true, last_alert_at = now(), last_alert_run_id = $2, last_alert_suppressed = $3,
                suppressed = 0, updated_at = now()
          WHERE ${key} = $1`,
        [id, runId, decision.suppressed],
      );
      return { kind: 'failure', suppressed: decision.suppressed };
    case 'recover':
      await tx.query(
        `UPDATE ${table} SET failing = false, suppressed = 0, updated_at = now(),
                last_alert_run_id = CASE WHEN $3 THEN $2::uuid ELSE last_alert_run_id END,
                last_alert_suppressed = CASE WHEN $3 THEN $4 ELSE last_alert_suppressed END
          WHERE ${key} = $1`,
        [id, runId, decision.send, decision.suppressed],
      );
      return decision.send ? { kind: 'recovery', suppressed: decision.suppressed } : null;
  }
}
