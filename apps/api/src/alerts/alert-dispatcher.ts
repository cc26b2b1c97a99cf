import { Inject, Injectable, Logger } from '@nestjs/common';
import type { OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { AppConfig } from '@task-scheduler/config';
import type { AlertChannelType, AlertNotificationPayload } from '@task-scheduler/db';
import { DataSource } from 'typeorm';
import { PeriodicJob } from '../common/periodic-job';
import { APP_CONFIG } from '../infra/tokens';
import { MetricsService } from '../metrics/metrics.service';
import { AlertDelivery } from './alert-delivery';
import type { DeliveryResult } from './alert-delivery';

/** Notifications claimed per pass, and of one tenant at most. */
const BATCH = 20;
const PER_TENANT = 5;
/** A claimed notification not settled by then (its process died mid-send) is due again: at least once. */
const LEASE_SECONDS = 120;
/** Tries before a notification is given up as `failed`. */
export const MAX_ATTEMPTS = 10;
/** Backoff after the n-th failed try: 5 s, 10 s, 20 s … at most an hour; a receiver's Retry-After wins. */
export function backoffMs(attempt: number): number {
  return Math.min(5_000 * 2 ** Math.max(0, attempt - 1), 3_600_000);
}

export interface DispatchReport {
  sent: number;
  retried: number;
  failed: number;
}

interface Claimed {
  id: string;
  tenant_id: string;
  tenant_name: string;
  channel_id: string;
  type: AlertChannelType;
  url: string | null;
  email_to: string[] | null;
  secret_sealed: string | null;
  payload: AlertNotificationPayload;
  attempts: number;
}

/**
 * Sends the alert notifications due (the outbox `alert_notifications`), in every API process: each claims
 * its rows with `FOR UPDATE SKIP LOCKED` and a lease, so two processes never send one notification at once,
 * and one that dies mid-send leaves it to be sent again after the lease (at least once; receivers drop
 * repeats by the event id). Failed tries back off exponentially, or as long as the receiver's Retry-After says.
 */
@Injectable()
export class AlertDispatcher implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('AlertDispatcher');
  private readonly job = new PeriodicJob('alert dispatch', this.logger, () => this.dispatch());

  constructor(
    private readonly db: DataSource,
    private readonly delivery: AlertDelivery,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {}

  onApplicationBootstrap(): void {
    this.job.start(this.config.ALERT_DISPATCH_SECONDS);
  }

  onApplicationShutdown(): Promise<void> {
    return this.job.stop();
  }

  /** One pass over the notifications due; `tenantId` limits it to one tenant's (tests share a database). */
  async dispatch(opts: { tenantId?: string } = {}): Promise<DispatchReport> {
    const report: DispatchReport = { sent: 0, retried: 0, failed: 0 };
    // Due rows, at most PER_TENANT per tenant (one tenant's slow receiver or burst leaves room for the others),
    // only the oldest pending one of each alert and channel (a receiver sees firing before resolved), and none
    // of a suspended tenant.
    const claimed: Claimed[] = await this.db.query(
      `WITH due AS (
         SELECT n.id FROM alert_notifications n JOIN tenants t ON t.id = n.tenant_id
          -- Due again on n itself: a row another process claimed (and committed) after this statement's snapshot
          -- is re-checked on its new version when locked; conditions only inside the subquery are not.
          WHERE t.status = 'active' AND n.status = 'pending' AND n.next_attempt_at <= now() AND n.id IN (
                SELECT id FROM (
                  SELECT x.id, row_number() OVER (PARTITION BY x.tenant_id ORDER BY x.next_attempt_at, x.seq) AS rn
                    FROM alert_notifications x
                   WHERE x.status = 'pending' AND x.next_attempt_at <= now() AND ($1::uuid IS NULL OR x.tenant_id = $1)
                     AND NOT EXISTS (SELECT 1 FROM alert_notifications o
                                      WHERE o.alert_id = x.alert_id AND o.channel_id = x.channel_id
                                        AND o.status = 'pending' AND o.seq < x.seq)) ranked
                 WHERE rn <= ${PER_TENANT})
          ORDER BY n.next_attempt_at LIMIT ${BATCH} FOR UPDATE OF n SKIP LOCKED),
       claimed AS (
         UPDATE alert_notifications n SET attempts = n.attempts + 1, next_attempt_at = now() + make_interval(secs => ${LEASE_SECONDS})
           FROM due WHERE n.id = due.id AND n.status = 'pending' AND n.next_attempt_at <= now()
         RETURNING n.id, n.tenant_id, n.channel_id, n.payload, n.attempts)
       SELECT c.*, t.name AS tenant_name, ch.type, ch.url, ch.email_to, ch.secret_sealed
         FROM claimed c JOIN alert_channels ch ON ch.id = c.channel_id AND ch.tenant_id = c.tenant_id JOIN tenants t ON t.id = c.tenant_id`,
      [opts.tenantId ?? null],
    );
    await Promise.all(
      claimed.map(async (n) => {
        const result = await this.delivery.deliver(
          n.id,
          {
            id: n.channel_id,
            tenantId: n.tenant_id,
            tenantName: n.tenant_name,
            type: n.type,
            url: n.url,
            emailTo: n.email_to,
            secretSealed: n.secret_sealed,
          },
          n.payload,
        );
        const outcome = await this.settle(n, result);
        this.metrics.alertNotification(n.type, outcome);
        if (outcome === 'sent') report.sent++;
        else if (outcome === 'retry') report.retried++;
        else {
          report.failed++;
          this.logger.warn({ notificationId: n.id, channelId: n.channel_id, error: result.error }, 'alert notification given up');
        }
      }),
    );
    return report;
  }

  private async settle(n: Claimed, r: DeliveryResult): Promise<DeliveryResult['outcome']> {
    const outcome = r.outcome === 'retry' && n.attempts >= MAX_ATTEMPTS ? 'failed' : r.outcome;
    const delayMs = r.retryAfterMs !== null ? Math.min(r.retryAfterMs, 3_600_000) : backoffMs(n.attempts);
    await this.db.query(
      `UPDATE alert_notifications
          SET status = CASE $2 WHEN 'sent' THEN 'sent' WHEN 'failed' THEN 'failed' ELSE 'pending' END,
              sent_at = CASE WHEN $2 = 'sent' THEN now() END,
              last_error = $3,
              next_attempt_at = CASE WHEN $2 = 'retry' THEN now() + make_interval(secs => $4::double precision / 1000) ELSE next_attempt_at END
        WHERE id = $1 AND status = 'pending' AND attempts = $5`,
      [n.id, outcome, r.error, delayMs, n.attempts],
    );
    // (No row: this send outlived its lease and another process took the notification over; its result stands.)
    return outcome;
  }
}
