/*
 * Alert state changes, shared by the worker (a run's end, in the transaction that writes its final record) and the
 * API (the run reconciler ending a run; the evaluator of time-based rules). Every change to an alert and the
 * notifications it needs are written in one transaction, so a notification is never lost and never sent for a
 * change that did not commit. Two processes deciding at once cannot open two alerts: the partial unique index
 * `alerts_one_firing` makes the second insert an update of the first (docs/alerts.md).
 */
import type { AlertRuleKind } from './entities/alert.entity';

/** A TypeORM EntityManager (in a transaction): `query` gives rows, or `[rows, count]` for UPDATE and DELETE. */
export interface Sql {
  query(sql: string, params?: unknown[]): Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export type AlertEvent = 'firing' | 'renotify' | 'escalation' | 'resolved' | 'test';

/** What a notification says; the dispatcher renders it per channel (JSON, Slack blocks, email) and adds links. */
export interface AlertNotificationPayload {
  event: AlertEvent;
  tenantId: string;
  alert: {
    id: string;
    state: 'firing' | 'resolved';
    summary: string;
    openedAt: string;
    resolvedAt: string | null;
    details: Record<string, unknown>;
  } | null;
  rule: { id: string; name: string; kind: AlertRuleKind } | null;
  subject: { type: 'task' | 'schedule'; id: string; name: string } | null;
  /** The run that decided it (the last failure, the recovering success), when a run did. */
  run: { id: string; status: string; error: string | null; attempts: number; workflowId: string; finishedAt: string | null } | null;
}

export interface RuleRow {
  id: string;
  tenant_id: string;
  name: string;
  kind: AlertRuleKind;
  failures: number;
  recoveries: number;
  channel_id: string;
  escalation_channel_id: string | null;
}

interface AlertRow {
  id: string;
  state: 'firing' | 'resolved';
  summary: string;
  details: Record<string, unknown>;
  created_at: Date;
  resolved_at: Date | null;
  escalated_at: Date | null;
  inserted?: boolean;
}

const RULE_COLUMNS = `r.id, r.tenant_id, r.name, r.kind, r.failures, r.recoveries, r.channel_id, r.escalation_channel_id`;

function alertOf(a: AlertRow): NonNullable<AlertNotificationPayload['alert']> {
  return {
    id: a.id,
    state: a.state,
    summary: a.summary,
    openedAt: a.created_at.toISOString(),
    resolvedAt: a.resolved_at?.toISOString() ?? null,
    details: a.details,
  };
}

/** Queues one notification of `event` to a channel: sent later by the API's dispatcher, in this transaction's commit. */
export async function enqueueNotification(
  q: Sql,
  n: { tenantId: string; alertId: string | null; channelId: string; payload: AlertNotificationPayload; heldByCaller?: boolean },
): Promise<string> {
  // Held: the caller sends it itself (a test-send), so no dispatcher may (next_attempt_at never comes).
  const [row]: { id: string }[] = await q.query(
    `INSERT INTO alert_notifications (tenant_id, alert_id, channel_id, event, payload, next_attempt_at)
     VALUES ($1, $2, $3, $4, $5, CASE WHEN $6::boolean THEN 'infinity'::timestamptz ELSE now() END) RETURNING id`,
    [n.tenantId, n.alertId, n.channelId, n.payload.event, JSON.stringify(n.payload), n.heldByCaller ?? false],
  );
  return row.id;
}

export interface AlertChange {
  rule: RuleRow;
  subject: NonNullable<AlertNotificationPayload['subject']>;
  summary: string;
  details: Record<string, unknown>;
  run?: AlertNotificationPayload['run'];
}

/**
 * Opens the rule's alert for the subject, or, when one is already firing, refreshes its summary and details
 * without telling anyone again (re-notification is the evaluator's, on the rule's interval). Returns the alert
 * and whether this call opened it.
 */
export async function openAlert(q: Sql, c: AlertChange): Promise<{ alertId: string; opened: boolean }> {
  const [a]: AlertRow[] = await q.query(
    `INSERT INTO alerts (tenant_id, rule_id, subject_type, subject_id, state, summary, details, last_notified_at, notify_count)
     VALUES ($1, $2, $3, $4, 'firing', $5, $6, now(), 1)
     ON CONFLICT (rule_id, subject_id) WHERE state = 'firing'
       DO UPDATE SET summary = EXCLUDED.summary, details = EXCLUDED.details, updated_at = now()
     RETURNING id, state, summary, details, created_at, resolved_at, escalated_at, (xmax = 0) AS inserted`,
    [c.rule.tenant_id, c.rule.id, c.subject.type, c.subject.id, c.summary, JSON.stringify(c.details)],
  );
  if (a.inserted) {
    await enqueueNotification(q, {
      tenantId: c.rule.tenant_id,
      alertId: a.id,
      channelId: c.rule.channel_id,
      payload: {
        event: 'firing',
        tenantId: c.rule.tenant_id,
        alert: alertOf(a),
        rule: { id: c.rule.id, name: c.rule.name, kind: c.rule.kind },
        subject: c.subject,
        run: c.run ?? null,
      },
    });
  }
  return { alertId: a.id, opened: a.inserted === true };
}

/** Resolves the rule's firing alert for the subject, if there is one, and tells its channel (and the escalation channel, if it was told). */
export async function resolveAlert(q: Sql, c: AlertChange): Promise<string | null> {
  const [rows]: [AlertRow[], number] = await q.query(
    `UPDATE alerts SET state = 'resolved', resolved_at = now(), updated_at = now(),
            details = details || $3::jsonb
      WHERE rule_id = $1 AND subject_id = $2 AND state = 'firing'
      RETURNING id, state, $4::text AS summary, details, created_at, resolved_at, escalated_at`,
    [c.rule.id, c.subject.id, JSON.stringify({ resolution: c.details }), c.summary],
  );
  const a = rows[0];
  if (!a) return null;
  // A re-notification or escalation not sent yet would say "still firing" after the resolution: dropped.
  await q.query(
    `UPDATE alert_notifications SET status = 'cancelled', last_error = 'the alert resolved before it was sent'
      WHERE alert_id = $1 AND status = 'pending' AND event IN ('renotify', 'escalation')`,
    [a.id],
  );
  const channels = [c.rule.channel_id, ...(a.escalated_at && c.rule.escalation_channel_id ? [c.rule.escalation_channel_id] : [])];
  for (const channelId of channels) {
    await enqueueNotification(q, {
      tenantId: c.rule.tenant_id,
      alertId: a.id,
      channelId,
      payload: {
        event: 'resolved',
        tenantId: c.rule.tenant_id,
        alert: alertOf(a),
        rule: { id: c.rule.id, name: c.rule.name, kind: c.rule.kind },
        subject: c.subject,
        run: c.run ?? null,
      },
    });
  }
  return a.id;
}

/**
 * Counts one outcome for a rule and subject: a failure adds to the consecutive failures and clears the
 * successes, a success the other way round. The row lock of the upsert orders concurrent counts.
 */
export async function countOutcome(
  q: Sql,
  ruleId: string,
  subjectId: string,
  failed: boolean,
  seen: string,
): Promise<{ failures: number; successes: number }> {
  const [row]: { consecutive_failures: number; consecutive_successes: number }[] = await q.query(
    `INSERT INTO alert_rule_counters (rule_id, subject_id, consecutive_failures, consecutive_successes, last_seen)
     VALUES ($1, $2, CASE WHEN $3::boolean THEN 1 ELSE 0 END, CASE WHEN $3::boolean THEN 0 ELSE 1 END, $4)
     ON CONFLICT (rule_id, subject_id) DO UPDATE SET
       consecutive_failures = CASE WHEN $3::boolean THEN alert_rule_counters.consecutive_failures + 1 ELSE 0 END,
       consecutive_successes = CASE WHEN $3::boolean THEN 0 ELSE alert_rule_counters.consecutive_successes + 1 END,
       last_seen = $4, updated_at = now()
     RETURNING consecutive_failures, consecutive_successes`,
    [ruleId, subjectId, failed, seen],
  );
  return { failures: row.consecutive_failures, successes: row.consecutive_successes };
}

const FAILED = new Set(['failed', 'timed_out']);

/**
 * Feeds a finished run to the tenant's `consecutive_failures` rules for its task: opens an alert at the rule's
 * N-th failure in a row, resolves it at the M-th success in a row. Counted once per run, however often it is
 * called (a retried activity, the reconciler after a lost finalisation): `alert_run_evaluations` remembers.
 * Cancelled runs are neither: they leave the counts as they are. Returns the alerts opened and resolved.
 */
export async function evaluateRunEnd(q: Sql, runId: string): Promise<{ opened: string[]; resolved: string[] }> {
  const none = { opened: [], resolved: [] };
  const [run]: {
    id: string;
    tenant_id: string;
    task_id: string;
    task_name: string;
    status: string;
    error: string | null;
    attempts: number;
    workflow_id: string;
    finished_at: Date | null;
  }[] = await q.query(
    `SELECT r.id, r.tenant_id, r.task_id, k.name AS task_name, r.status, r.error, r.attempts, r.workflow_id, r.finished_at
       FROM runs r JOIN tasks k ON k.id = r.task_id WHERE r.id = $1`,
    [runId],
  );
  if (!run || !['succeeded', 'failed', 'timed_out'].includes(run.status)) return none;
  const rules: RuleRow[] = await q.query(
    `SELECT ${RULE_COLUMNS} FROM alert_rules r
      WHERE r.tenant_id = $1 AND r.kind = 'consecutive_failures' AND r.enabled AND (r.task_id IS NULL OR r.task_id = $2)
      ORDER BY r.id FOR SHARE OF r`,
    [run.tenant_id, run.task_id],
  );
  if (rules.length === 0) return none;
  const counted: { run_id: string }[] = await q.query(
    `INSERT INTO alert_run_evaluations (run_id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING run_id`,
    [runId],
  );
  if (counted.length === 0) return none;
  const failed = FAILED.has(run.status);
  const subject = { type: 'task' as const, id: run.task_id, name: run.task_name };
  const runInfo = {
    id: run.id,
    status: run.status,
    error: run.error,
    attempts: run.attempts,
    workflowId: run.workflow_id,
    finishedAt: run.finished_at?.toISOString() ?? null,
  };
  const out: { opened: string[]; resolved: string[] } = { opened: [], resolved: [] };
  for (const rule of rules) {
    const n = await countOutcome(q, rule.id, run.task_id, failed, run.id);
    if (failed && n.failures >= rule.failures) {
      const { alertId, opened } = await openAlert(q, {
        rule,
        subject,
        summary: `Task "${run.task_name}" failed ${n.failures} time${n.failures === 1 ? '' : 's'} in a row`,
        details: { consecutiveFailures: n.failures, lastRunId: run.id, lastStatus: run.status, lastError: run.error },
        run: runInfo,
      });
      if (opened) out.opened.push(alertId);
    } else if (!failed && n.successes >= rule.recoveries) {
      const resolved = await resolveAlert(q, {
        rule,
        subject,
        summary: `Task "${run.task_name}" recovered: ${n.successes} successful run${n.successes === 1 ? '' : 's'} in a row`,
        details: { consecutiveSuccesses: n.successes, runId: run.id },
        run: runInfo,
      });
      if (resolved) out.resolved.push(resolved);
    }
  }
  return out;
}
