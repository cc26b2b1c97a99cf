import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Alerting (docs/alerts.md): a tenant's channels (webhook, Slack, email), its rules, the alerts the rules
 * open and every notification sent for them.
 * - `alert_channels.secret_sealed`: a webhook's signing secret, sealed with SECRETS_KEY (AES-GCM, tenant as
 *   associated data); shown to the caller once, at create.
 * - `alert_rule_counters`: per rule and subject (a task), the consecutive failures and successes so far.
 * - `alert_run_evaluations`: the runs counted, so a retried run end is counted once.
 * - `alerts`: at most one `firing` alert per (rule, subject), enforced by a partial unique index, so two
 *   processes deciding at once cannot open two.
 * - `alert_notifications`: an outbox. Rows are written in the same transaction as the alert change that
 *   needs them and sent by the API's dispatcher, at least once, with retries and backoff.
 */
export class Alerts1733200000000 implements MigrationInterface {
  name = 'Alerts1733200000000';

  async up(q: QueryRunner): Promise<void> {
    // The foreign keys to tenants, tasks, schedules and runs take a brief SHARE ROW EXCLUSIVE on them: bounded, so a
    // long transaction fails the migration instead of queueing every run's write behind it.
    await q.query(`SET LOCAL lock_timeout = '10s'`);
    await q.query(`
      CREATE TABLE alert_channels (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name text NOT NULL,
        type text NOT NULL CHECK (type IN ('webhook', 'slack', 'email')),
        url text,
        email_to text[],
        secret_sealed text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (tenant_id, name),
        CHECK ((type = 'email') = (email_to IS NOT NULL)),
        CHECK ((type = 'email') = (url IS NULL))
      )`);
    await q.query(`
      CREATE TABLE alert_rules (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name text NOT NULL,
        kind text NOT NULL CHECK (kind IN ('consecutive_failures', 'missed_fire', 'queued_too_long', 'running_too_long')),
        task_id uuid REFERENCES tasks(id) ON DELETE CASCADE,
        schedule_id uuid REFERENCES schedules(id) ON DELETE CASCADE,
        failures integer NOT NULL DEFAULT 1 CHECK (failures BETWEEN 1 AND 1000),
        recoveries integer NOT NULL DEFAULT 1 CHECK (recoveries BETWEEN 1 AND 1000),
        threshold_seconds integer CHECK (threshold_seconds BETWEEN 1 AND 2592000),
        channel_id uuid NOT NULL REFERENCES alert_channels(id) ON DELETE RESTRICT,
        escalation_channel_id uuid REFERENCES alert_channels(id) ON DELETE RESTRICT,
        escalate_after_seconds integer CHECK (escalate_after_seconds BETWEEN 1 AND 2592000),
        renotify_seconds integer CHECK (renotify_seconds BETWEEN 1 AND 2592000),
        enabled boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (tenant_id, name),
        CHECK ((escalation_channel_id IS NULL) = (escalate_after_seconds IS NULL)),
        CHECK ((kind IN ('queued_too_long', 'running_too_long')) = (threshold_seconds IS NOT NULL))
      )`);
    await q.query(`CREATE INDEX alert_rules_tenant_kind ON alert_rules (tenant_id, kind) WHERE enabled`);
    await q.query(`
      CREATE TABLE alert_rule_counters (
        rule_id uuid NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
        subject_id uuid NOT NULL,
        consecutive_failures integer NOT NULL DEFAULT 0,
        consecutive_successes integer NOT NULL DEFAULT 0,
        last_seen text,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (rule_id, subject_id)
      )`);
    await q.query(`
      CREATE TABLE alert_run_evaluations (
        run_id uuid PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
        evaluated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE alerts (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        rule_id uuid NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,
        subject_type text NOT NULL CHECK (subject_type IN ('task', 'schedule')),
        subject_id uuid NOT NULL,
        state text NOT NULL CHECK (state IN ('firing', 'resolved')),
        summary text NOT NULL,
        details jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        resolved_at timestamptz,
        last_notified_at timestamptz,
        notify_count integer NOT NULL DEFAULT 0,
        escalated_at timestamptz,
        acked_at timestamptz,
        acked_by text,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE UNIQUE INDEX alerts_one_firing ON alerts (rule_id, subject_id) WHERE state = 'firing'`);
    await q.query(`CREATE INDEX alerts_tenant_created ON alerts (tenant_id, created_at DESC, id DESC)`);
    // For the cascades of a deleted rule, channel or alert (and the rule's alerts in the evaluator).
    await q.query(`CREATE INDEX alerts_rule ON alerts (rule_id)`);
    await q.query(`
      CREATE TABLE alert_notifications (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        alert_id uuid REFERENCES alerts(id) ON DELETE CASCADE,
        channel_id uuid NOT NULL REFERENCES alert_channels(id) ON DELETE CASCADE,
        event text NOT NULL CHECK (event IN ('firing', 'renotify', 'escalation', 'resolved', 'test')),
        -- cancelled: not sent, because the alert resolved (a re-notification or escalation still due) or its rule was disabled.
        status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'cancelled')),
        -- Order of the notifications of one alert: they are written under the alert's row lock, so in this order.
        seq bigint GENERATED ALWAYS AS IDENTITY,
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        last_error text,
        payload jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        sent_at timestamptz
      )`);
    await q.query(`CREATE INDEX alert_notifications_tenant ON alert_notifications (tenant_id, created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX alert_notifications_due ON alert_notifications (next_attempt_at) WHERE status = 'pending'`);
    await q.query(`CREATE INDEX alert_notifications_pending ON alert_notifications (alert_id, channel_id, seq) WHERE status = 'pending'`);
    await q.query(`CREATE INDEX alert_notifications_alert ON alert_notifications (alert_id, seq)`);
    await q.query(`CREATE INDEX alert_notifications_channel ON alert_notifications (channel_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const t of ['alert_notifications', 'alerts', 'alert_run_evaluations', 'alert_rule_counters', 'alert_rules', 'alert_channels']) {
      await q.query(`DROP TABLE ${t}`);
    }
  }
}
