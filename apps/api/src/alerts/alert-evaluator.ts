import { Inject, Injectable, Logger } from '@nestjs/common';
import type { OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { AppConfig } from '@task-scheduler/config';
import { countOutcome, enqueueNotification, openAlert, resolveAlert } from '@task-scheduler/db';
import type { AlertEvent, AlertNotificationPayload, AlertRuleKind, RuleRow } from '@task-scheduler/db';
import { DataSource } from 'typeorm';
import type { EntityManager } from 'typeorm';
import type { RequestContext } from '../auth/request-context';
import { PeriodicJob } from '../common/periodic-job';
import { APP_CONFIG } from '../infra/tokens';
import { MetricsService } from '../metrics/metrics.service';
import { SchedulesService } from '../schedules/schedules.service';
import type { FireReason } from '../schedules/fire-classification';

/** Advisory-lock key: one API process evaluates alert rules at a time. */
const ALERT_EVALUATE_LOCK = 0x61_6c_72_74; // 'alrt'
/** Runs named in a time-based alert's details, at most. */
const RUNS_SHOWN = 10;
/** Schedules one `missed_fire` rule looks at per pass, at most (oldest checked first). */
const SCHEDULES_PER_RULE = 200;
/** Fires one `missed_fire` rule reads per schedule and pass, at most; the rest the next pass. */
const FIRES_PER_PASS = 1000;
/** Fires younger than this are left to the next pass: a fire may still be starting (fire-classification.ts). */
const FIRE_SETTLE_MS = 10_000;
/** Missed fires a person chose: a paused schedule, a disabled task. They open no alert. */
const DELIBERATE: ReadonlySet<FireReason> = new Set(['paused', 'task_disabled']);

export interface AlertEvaluationReport {
  opened: number;
  resolved: number;
  renotified: number;
  escalated: number;
  errors: string[];
}

interface FullRule extends RuleRow {
  task_id: string | null;
  schedule_id: string | null;
  threshold_seconds: number | null;
  created_at: Date;
}

function duration(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/**
 * Evaluates what no run's end decides, every ALERT_EVALUATE_SECONDS under an advisory lock (one API process
 * at a time): runs `queued` or `running` longer than a rule's threshold, schedule fires missed or skipped,
 * re-notification of firing alerts nobody acknowledged, and escalation to the second channel. Each change and
 * its notifications commit together (libs/db alert-rules.ts); the dispatcher sends them.
 */
@Injectable()
export class AlertEvaluator implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('AlertEvaluator');
  private readonly job = new PeriodicJob('alert evaluation', this.logger, () => this.evaluate());

  constructor(
    private readonly db: DataSource,
    private readonly schedules: SchedulesService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {}

  onApplicationBootstrap(): void {
    this.job.start(this.config.ALERT_EVALUATE_SECONDS);
  }

  onApplicationShutdown(): Promise<void> {
    return this.job.stop();
  }

  /** One pass; null when another process holds the lock. `tenantId` limits it to one tenant (tests share a database). */
  async evaluate(opts: { tenantId?: string } = {}): Promise<AlertEvaluationReport | null> {
    return this.db.transaction(async (tx) => {
      const [{ locked }] = await tx.query(`SELECT pg_try_advisory_xact_lock($1) AS locked`, [ALERT_EVALUATE_LOCK]);
      if (!locked) return null;
      const report: AlertEvaluationReport = { opened: 0, resolved: 0, renotified: 0, escalated: 0, errors: [] };
      const rules: FullRule[] = await tx.query(
        `SELECT r.id, r.tenant_id, r.name, r.kind, r.failures, r.recoveries, r.channel_id, r.escalation_channel_id,
                r.task_id, r.schedule_id, r.threshold_seconds, r.created_at
           FROM alert_rules r JOIN tenants t ON t.id = r.tenant_id
          WHERE r.enabled AND r.kind <> 'consecutive_failures' AND t.status = 'active' AND ($1::uuid IS NULL OR r.tenant_id = $1)
          ORDER BY r.id FOR SHARE OF r`,
        [opts.tenantId ?? null],
      );
      for (const rule of rules) {
        // A savepoint per rule: one rule's error (a schedule Temporal cannot preview) leaves the others' changes.
        try {
          await tx.query('SAVEPOINT rule');
          const r = rule.kind === 'missed_fire' ? await this.missedFires(tx, rule) : await this.waitingRuns(tx, rule);
          await tx.query('RELEASE SAVEPOINT rule');
          report.opened += r.opened;
          report.resolved += r.resolved;
          for (let i = 0; i < r.opened; i++) this.metrics.alertTransition(rule.kind, 'firing');
          for (let i = 0; i < r.resolved; i++) this.metrics.alertTransition(rule.kind, 'resolved');
        } catch (err) {
          await tx.query('ROLLBACK TO SAVEPOINT rule');
          report.errors.push(`rule ${rule.id}: ${(err as Error).message}`);
        }
      }
      report.resolved += await this.resolveGone(tx, opts.tenantId);
      report.renotified = await this.repeat(tx, 'renotify', opts.tenantId);
      report.escalated = await this.repeat(tx, 'escalation', opts.tenantId);
      if (report.errors.length) this.logger.warn({ errors: report.errors }, 'alert evaluation: some rules could not be evaluated');
      return report;
    });
  }

  /** `queued_too_long` / `running_too_long`: one alert per task with such runs, resolved when it has none. */
  private async waitingRuns(tx: EntityManager, rule: FullRule): Promise<{ opened: number; resolved: number }> {
    const queued = rule.kind === 'queued_too_long';
    const since = queued ? 'x.queued_at' : 'x.started_at';
    const threshold = rule.threshold_seconds as number;
    const found: { task_id: string; task_name: string; n: number; run_ids: string[]; oldest: Date }[] = await tx.query(
      `SELECT x.task_id, k.name AS task_name, count(*)::int AS n,
              (array_agg(x.id ORDER BY ${since}, x.id))[1:${RUNS_SHOWN}] AS run_ids, min(${since}) AS oldest
         FROM runs x JOIN tasks k ON k.id = x.task_id
        WHERE x.tenant_id = $1 AND ($2::uuid IS NULL OR x.task_id = $2) AND x.status = $3
          AND ${since} < now() - make_interval(secs => $4)
        GROUP BY x.task_id, k.name`,
      [rule.tenant_id, rule.task_id, queued ? 'queued' : 'running', threshold],
    );
    let opened = 0;
    let resolved = 0;
    for (const f of found) {
      const waited = queued ? 'waiting to start' : 'running';
      const r = await openAlert(tx, {
        rule,
        subject: { type: 'task', id: f.task_id, name: f.task_name },
        summary: `${f.n} run${f.n === 1 ? '' : 's'} of task "${f.task_name}" ${waited} for longer than ${duration(threshold)}`,
        details: { runs: f.n, runIds: f.run_ids, oldestSince: new Date(f.oldest).toISOString(), thresholdSeconds: threshold },
        run: await this.runInfo(tx, f.run_ids[0]),
      });
      if (r.opened) opened++;
    }
    const gone: { subject_id: string; name: string | null }[] = await tx.query(
      `SELECT a.subject_id, k.name FROM alerts a LEFT JOIN tasks k ON k.id = a.subject_id
        WHERE a.rule_id = $1 AND a.state = 'firing' AND NOT (a.subject_id = ANY($2::uuid[]))`,
      [rule.id, found.map((f) => f.task_id)],
    );
    for (const g of gone) {
      const name = g.name ?? g.subject_id;
      const id = await resolveAlert(tx, {
        rule,
        subject: { type: 'task', id: g.subject_id, name },
        summary: `No run of task "${name}" is ${queued ? 'waiting' : 'running'} for longer than ${duration(threshold)} any more`,
        details: {},
      });
      if (id) resolved++;
    }
    return { opened, resolved };
  }

  /**
   * `missed_fire`: the fires of the rule's schedules since the last pass, as `/fires` classifies them, counted
   * in time order like run outcomes — a fire missed or skipped (not because someone paused the schedule or
   * disabled its task) is a failure, a fire that ran a success — so N missed fires in a row open the alert and
   * M fires that ran resolve it.
   */
  private async missedFires(tx: EntityManager, rule: FullRule): Promise<{ opened: number; resolved: number }> {
    const schedules: { id: string; name: string; last_seen: string | null }[] = await tx.query(
      `SELECT s.id, s.name, c.last_seen FROM schedules s
         LEFT JOIN alert_rule_counters c ON c.rule_id = $1 AND c.subject_id = s.id
        WHERE s.tenant_id = $2 AND s.deleted_at IS NULL AND ($3::uuid IS NULL OR s.id = $3)
        ORDER BY c.updated_at NULLS FIRST, s.id LIMIT ${SCHEDULES_PER_RULE}`,
      [rule.id, rule.tenant_id, rule.schedule_id],
    );
    const until = new Date(Date.now() - FIRE_SETTLE_MS);
    let opened = 0;
    let resolved = 0;
    const errors: string[] = [];
    for (const s of schedules) {
      const from = s.last_seen ? new Date(new Date(s.last_seen).getTime() + 1) : rule.created_at;
      if (from >= until) continue;
      // A savepoint per schedule: one Temporal cannot describe leaves the others' counts.
      await tx.query('SAVEPOINT schedule');
      try {
        const r = await this.judgeFires(tx, rule, s, from, until);
        await tx.query('RELEASE SAVEPOINT schedule');
        opened += r.opened;
        resolved += r.resolved;
      } catch (err) {
        await tx.query('ROLLBACK TO SAVEPOINT schedule');
        errors.push(`schedule ${s.id}: ${(err as Error).message}`);
      }
    }
    if (errors.length) this.logger.warn({ ruleId: rule.id, errors }, 'missed-fire rule: some schedules could not be judged');
    return { opened, resolved };
  }

  /** The fires of one schedule in [from, until], counted in time order; then the rule's position moves past them. */
  private async judgeFires(
    tx: EntityManager,
    rule: FullRule,
    s: { id: string; name: string },
    from: Date,
    until: Date,
  ): Promise<{ opened: number; resolved: number }> {
    const ctx = { tenantId: rule.tenant_id } as RequestContext;
    const { items } = await this.schedules.fires(ctx, s.id, from, until, FIRES_PER_PASS);
    const fires = items
      .filter((f) => f.outcome !== 'excluded' && !(f.outcome === 'missed' && f.reason && DELIBERATE.has(f.reason)))
      .sort((a, b) => a.scheduledAt.localeCompare(b.scheduledAt));
    const subject = { type: 'schedule' as const, id: s.id, name: s.name };
    let opened = 0;
    let resolved = 0;
    for (const f of fires) {
      const missed = f.outcome === 'missed';
      const n = await countOutcome(tx, rule.id, s.id, missed, f.scheduledAt);
      if (missed && n.failures >= rule.failures) {
        const r = await openAlert(tx, {
          rule,
          subject,
          summary: `Schedule "${s.name}" missed ${n.failures} fire${n.failures === 1 ? '' : 's'} in a row (last: ${f.reason ?? 'missed'})`,
          details: { consecutiveMissed: n.failures, lastScheduledAt: f.scheduledAt, lastReason: f.reason },
        });
        if (r.opened) opened++;
      } else if (!missed && n.successes >= rule.recoveries) {
        const id = await resolveAlert(tx, {
          rule,
          subject,
          summary: `Schedule "${s.name}" fires again: ${n.successes} fire${n.successes === 1 ? '' : 's'} ran in a row`,
          details: { lastScheduledAt: f.scheduledAt, runId: f.runId },
        });
        if (id) resolved++;
      }
    }
    // The position moves on even when nothing counted (a paused stretch, exclusions): the next pass starts after
    // it. A full page moves it only to its last fire, so the rest is read next pass.
    const all = items.map((f) => f.scheduledAt).sort();
    const position = items.length >= FIRES_PER_PASS ? all[all.length - 1] : until.toISOString();
    await tx.query(
      `INSERT INTO alert_rule_counters (rule_id, subject_id, consecutive_failures, consecutive_successes, last_seen)
       VALUES ($1, $2, 0, 0, $3)
       ON CONFLICT (rule_id, subject_id) DO UPDATE
         SET last_seen = greatest(alert_rule_counters.last_seen, EXCLUDED.last_seen), updated_at = now()`,
      [rule.id, s.id, position],
    );
    return { opened, resolved };
  }

  /**
   * Resolves firing alerts nobody could resolve any more: their task or schedule was deleted. (A deleted
   * task's runs end; its time-based alerts would resolve by themselves, its failure streak would not.)
   */
  private async resolveGone(tx: EntityManager, tenantId?: string): Promise<number> {
    const gone: (RuleRow & { subject_type: 'task' | 'schedule'; subject_id: string; subject_name: string })[] = await tx.query(
      `SELECT r.id, r.tenant_id, r.name, r.kind, r.failures, r.recoveries, r.channel_id, r.escalation_channel_id,
              a.subject_type, a.subject_id, coalesce(k.name, s.name) AS subject_name
         FROM alerts a JOIN alert_rules r ON r.id = a.rule_id
         LEFT JOIN tasks k ON a.subject_type = 'task' AND k.id = a.subject_id
         LEFT JOIN schedules s ON a.subject_type = 'schedule' AND s.id = a.subject_id
        WHERE a.state = 'firing' AND ($1::uuid IS NULL OR a.tenant_id = $1)
          AND (k.deleted_at IS NOT NULL OR s.deleted_at IS NOT NULL)
        ORDER BY a.id LIMIT 500`,
      [tenantId ?? null],
    );
    let n = 0;
    for (const g of gone) {
      const what = g.subject_type === 'task' ? 'Task' : 'Schedule';
      const id = await resolveAlert(tx, {
        rule: g,
        subject: { type: g.subject_type, id: g.subject_id, name: g.subject_name },
        summary: `${what} "${g.subject_name}" was deleted`,
        details: { subjectDeleted: true },
      });
      if (id) {
        n++;
        this.metrics.alertTransition(g.kind, 'resolved');
      }
    }
    return n;
  }

  private async runInfo(tx: EntityManager, runId: string | undefined): Promise<AlertNotificationPayload['run']> {
    if (!runId) return null;
    const [r]: { id: string; status: string; error: string | null; attempts: number; workflow_id: string; finished_at: Date | null }[] =
      await tx.query(`SELECT id, status, error, attempts, workflow_id, finished_at FROM runs WHERE id = $1`, [runId]);
    return r
      ? { id: r.id, status: r.status, error: r.error, attempts: r.attempts, workflowId: r.workflow_id, finishedAt: r.finished_at?.toISOString() ?? null }
      : null;
  }

  /**
   * Re-notifies firing, unacknowledged alerts whose rule has an interval and that were last told longer ago
   * (to the channel, and to the escalation channel once escalated); or escalates those unacknowledged past the
   * rule's escalation delay, once. Acknowledging stops both.
   */
  private async repeat(tx: EntityManager, event: Extract<AlertEvent, 'renotify' | 'escalation'>, tenantId?: string): Promise<number> {
    const due =
      event === 'renotify'
        ? `r.renotify_seconds IS NOT NULL AND a.last_notified_at < now() - make_interval(secs => r.renotify_seconds)`
        : `r.escalation_channel_id IS NOT NULL AND a.escalated_at IS NULL AND a.created_at < now() - make_interval(secs => r.escalate_after_seconds)`;
    const set = event === 'renotify' ? `last_notified_at = now(), notify_count = a.notify_count + 1` : `escalated_at = now()`;
    const [rows]: [
      {
        id: string;
        tenant_id: string;
        state: 'firing';
        summary: string;
        details: Record<string, unknown>;
        created_at: Date;
        escalated_at: Date | null;
        subject_type: 'task' | 'schedule';
        subject_id: string;
        rule_id: string;
        rule_name: string;
        kind: AlertRuleKind;
        channel_id: string;
        escalation_channel_id: string | null;
      }[],
      number,
    ] = await tx.query(
      `UPDATE alerts a SET ${set}, updated_at = now()
         FROM alert_rules r, tenants t
        WHERE r.id = a.rule_id AND t.id = a.tenant_id AND t.status = 'active'
          AND a.state = 'firing' AND a.acked_at IS NULL AND r.enabled AND ${due}
          AND ($1::uuid IS NULL OR a.tenant_id = $1)
        RETURNING a.id, a.tenant_id, a.state, a.summary, a.details, a.created_at, a.escalated_at, a.subject_type, a.subject_id,
                  r.id AS rule_id, r.name AS rule_name, r.kind, r.channel_id, r.escalation_channel_id`,
      [tenantId ?? null],
    );
    for (const a of rows) {
      const [subject]: { name: string }[] = await tx.query(
        a.subject_type === 'task' ? `SELECT name FROM tasks WHERE id = $1` : `SELECT name FROM schedules WHERE id = $1`,
        [a.subject_id],
      );
      const runId = (a.details.lastRunId ?? (a.details.runIds as string[] | undefined)?.[0]) as string | undefined;
      const payload: AlertNotificationPayload = {
        event,
        tenantId: a.tenant_id,
        alert: { id: a.id, state: a.state, summary: a.summary, openedAt: a.created_at.toISOString(), resolvedAt: null, details: a.details },
        rule: { id: a.rule_id, name: a.rule_name, kind: a.kind },
        subject: { type: a.subject_type, id: a.subject_id, name: subject?.name ?? a.subject_id },
        run: await this.runInfo(tx, runId),
      };
      const channels =
        event === 'escalation'
          ? [a.escalation_channel_id as string]
          : [a.channel_id, ...(a.escalated_at && a.escalation_channel_id ? [a.escalation_channel_id] : [])];
      for (const channelId of channels) await enqueueNotification(tx, { tenantId: a.tenant_id, alertId: a.id, channelId, payload });
      this.metrics.alertTransition(a.kind, event);
    }
    return rows.length;
  }
}
