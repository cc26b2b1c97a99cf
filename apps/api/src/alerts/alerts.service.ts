import { Injectable } from '@nestjs/common';
import { AlertEntity } from '@task-scheduler/db';
import { DataSource } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import type { RequestContext } from '../auth/request-context';
import { ApiError, ErrorCode } from '../common/api-error';
import { isUuid, keysetPage } from '../common/pagination';
import type { Page } from '../common/pagination';
import type { AlertNotificationResponse } from './dtos/alert.dto';

/** The alerts rules opened: listed, read with their notifications, acknowledged. */
@Injectable()
export class AlertsService {
  constructor(
    private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  list(ctx: RequestContext, q: { state?: string; ruleId?: string; limit: number; cursor?: string }): Promise<Page<AlertEntity>> {
    const qb = this.db.getRepository(AlertEntity).createQueryBuilder('a').where('a.tenant_id = :tenantId', { tenantId: ctx.tenantId });
    if (q.state) qb.andWhere('a.state = :state', { state: q.state });
    if (q.ruleId) qb.andWhere('a.rule_id = :ruleId', { ruleId: q.ruleId });
    return keysetPage(qb, 'a', q.limit, q.cursor);
  }

  async get(ctx: RequestContext, id: string): Promise<{ alert: AlertEntity; notifications: AlertNotificationResponse[] }> {
    const alert = isUuid(id) ? await this.db.getRepository(AlertEntity).findOneBy({ id, tenantId: ctx.tenantId }) : null;
    if (!alert) throw new ApiError(ErrorCode.ALERT_NOT_FOUND, `alert ${id} does not exist`);
    const rows: {
      id: string;
      channel_id: string;
      event: string;
      status: string;
      attempts: number;
      last_error: string | null;
      created_at: Date;
      sent_at: Date | null;
      next_attempt_at: Date;
    }[] = await this.db.query(
      `SELECT id, channel_id, event, status, attempts, last_error, created_at, sent_at, next_attempt_at
         FROM (SELECT * FROM alert_notifications WHERE alert_id = $1 ORDER BY seq DESC LIMIT 500) latest ORDER BY seq`,
      [alert.id],
    );
    return {
      alert,
      notifications: rows.map((n) => ({
        id: n.id,
        channelId: n.channel_id,
        event: n.event,
        status: n.status,
        attempts: n.attempts,
        lastError: n.last_error,
        createdAt: n.created_at.toISOString(),
        sentAt: n.sent_at?.toISOString() ?? null,
        nextAttemptAt: n.status === 'pending' ? n.next_attempt_at.toISOString() : null,
      })),
    };
  }

  /**
   * Acknowledges a firing alert: someone is on it, so it is neither re-notified nor escalated any more. It stays
   * firing until its rule resolves it. Acknowledging twice keeps the first acknowledgement.
   */
  async ack(ctx: RequestContext, id: string): Promise<AlertEntity> {
    return this.db.transaction(async (tx) => {
      const alert = isUuid(id)
        ? await tx.getRepository(AlertEntity).findOne({ where: { id, tenantId: ctx.tenantId }, lock: { mode: 'pessimistic_write' } })
        : null;
      if (!alert) throw new ApiError(ErrorCode.ALERT_NOT_FOUND, `alert ${id} does not exist`);
      if (alert.state !== 'firing') throw new ApiError(ErrorCode.ALERT_NOT_FIRING, `alert ${id} is resolved: there is nothing to acknowledge`);
      if (alert.ackedAt) return alert;
      await tx.getRepository(AlertEntity).update({ id: alert.id }, { ackedAt: new Date(), ackedBy: ctx.actor });
      await this.audit.record(tx, ctx, { action: 'alert.ack', targetType: 'alert', targetId: alert.id });
      return tx.getRepository(AlertEntity).findOneByOrFail({ id: alert.id });
    });
  }
}
