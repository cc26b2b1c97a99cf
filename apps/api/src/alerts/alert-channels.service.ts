import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { AppConfig } from '@task-scheduler/config';
import { parseSecretsKey, sealSecrets } from '@task-scheduler/core';
import { AlertChannelEntity, TenantEntity, enqueueNotification } from '@task-scheduler/db';
import type { AlertNotificationPayload } from '@task-scheduler/db';
import { DataSource } from 'typeorm';
import type { EntityManager } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import type { RequestContext } from '../auth/request-context';
import { ApiError, ErrorCode, fieldError } from '../common/api-error';
import { isUniqueViolation } from '../common/db-errors';
import { isUuid, keysetPage } from '../common/pagination';
import type { Page } from '../common/pagination';
import { checkUrlAddress } from '../common/url-address';
import { APP_CONFIG } from '../infra/tokens';
import { MetricsService } from '../metrics/metrics.service';
import { AlertDelivery, SEALED_KEYS } from './alert-delivery';
import { maskedSlackUrl } from './alert-messages';
import type { DeliveryResult } from './alert-delivery';
import type { CreateAlertChannelDto } from './dtos/alert.dto';

/** A tenant's alert channels: created with their secret sealed (shown once), deleted only when no rule uses them. */
@Injectable()
export class AlertChannelsService {
  private readonly secretsKey: Buffer | null;

  constructor(
    private readonly db: DataSource,
    private readonly audit: AuditService,
    private readonly delivery: AlertDelivery,
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.secretsKey = config.SECRETS_KEY ? parseSecretsKey(config.SECRETS_KEY) : null;
  }

  private seal(ctx: RequestContext, key: string, value: string): string {
    if (!this.secretsKey) {
      throw new ApiError(
        ErrorCode.SECRETS_NOT_CONFIGURED,
        'this deployment has no SECRETS_KEY, so it cannot store a webhook secret or a Slack URL; set it on the API',
      );
    }
    return sealSecrets({ env: { [key]: value } }, this.secretsKey, ctx.tenantId);
  }

  async create(ctx: RequestContext, dto: CreateAlertChannelDto): Promise<{ channel: AlertChannelEntity; secret?: string }> {
    let url: string | null = null;
    let emailTo: string[] | null = null;
    let secretSealed: string | null = null;
    let secret: string | undefined;
    if (dto.type === 'email') {
      if (dto.url !== undefined) throw fieldError(ErrorCode.ALERT_CHANNEL_INVALID, 'url', 'an email channel has recipients (to), not a url');
      if (!dto.to) throw fieldError(ErrorCode.ALERT_CHANNEL_INVALID, 'to', 'an email channel needs its recipients');
      if (!this.config.SMTP_URL) {
        throw new ApiError(ErrorCode.SMTP_NOT_CONFIGURED, 'this deployment has no SMTP_URL, so it cannot send email; set it on the API');
      }
      emailTo = [...new Set(dto.to.map((a) => a.toLowerCase()))];
    } else {
      if (dto.to !== undefined) throw fieldError(ErrorCode.ALERT_CHANNEL_INVALID, 'to', `a ${dto.type} channel has a url, not recipients`);
      if (!dto.url) throw fieldError(ErrorCode.ALERT_CHANNEL_INVALID, 'url', `a ${dto.type} channel needs its url`);
      let parsed: URL;
      try {
        parsed = new URL(dto.url);
      } catch {
        throw fieldError(ErrorCode.ALERT_CHANNEL_INVALID, 'url', 'url must be an absolute http or https URL');
      }
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
        throw fieldError(ErrorCode.ALERT_CHANNEL_INVALID, 'url', 'url must be an absolute http or https URL');
      }
      if (parsed.username || parsed.password) {
        throw fieldError(ErrorCode.ALERT_CHANNEL_INVALID, 'url', 'credentials in a URL (user:password@) would be stored in clear');
      }
      checkUrlAddress('url', dto.url, this.config.HTTP_ALLOW_CIDRS);
      if (dto.type === 'webhook') {
        url = dto.url;
        secret = `whsec_${randomBytes(24).toString('base64url')}`;
        secretSealed = this.seal(ctx, SEALED_KEYS.webhook, secret);
      } else {
        url = maskedSlackUrl(dto.url);
        secretSealed = this.seal(ctx, SEALED_KEYS.slack, dto.url);
      }
    }
    return this.db.transaction(async (tx) => {
      const repo = tx.getRepository(AlertChannelEntity);
      let channel: AlertChannelEntity;
      try {
        channel = await repo.save(repo.create({ tenantId: ctx.tenantId, name: dto.name, type: dto.type, url, emailTo, secretSealed }));
      } catch (err) {
        if (isUniqueViolation(err)) {
          throw new ApiError(ErrorCode.ALERT_CHANNEL_NAME_TAKEN, `an alert channel named ${JSON.stringify(dto.name)} already exists`);
        }
        throw err;
      }
      await this.audit.record(tx, ctx, { action: 'alert-channel.create', targetType: 'alert-channel', targetId: channel.id });
      return { channel, ...(secret ? { secret } : {}) };
    });
  }

  async get(ctx: RequestContext, id: string, tx: EntityManager = this.db.manager): Promise<AlertChannelEntity> {
    const ch = isUuid(id) ? await tx.getRepository(AlertChannelEntity).findOneBy({ id, tenantId: ctx.tenantId }) : null;
    if (!ch) throw new ApiError(ErrorCode.ALERT_CHANNEL_NOT_FOUND, `alert channel ${id} does not exist`);
    return ch;
  }

  list(ctx: RequestContext, limit: number, cursor?: string): Promise<Page<AlertChannelEntity>> {
    const qb = this.db.getRepository(AlertChannelEntity).createQueryBuilder('c').where('c.tenant_id = :tenantId', { tenantId: ctx.tenantId });
    return keysetPage(qb, 'c', limit, cursor);
  }

  async remove(ctx: RequestContext, id: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      const ch = await this.get(ctx, id, tx);
      const users: { id: string }[] = await tx.query(
        `SELECT id FROM alert_rules WHERE channel_id = $1 OR escalation_channel_id = $1 ORDER BY id LIMIT 20`,
        [ch.id],
      );
      if (users.length) {
        throw new ApiError(
          ErrorCode.ALERT_CHANNEL_IN_USE,
          `alert channel ${ch.id} is used by ${users.length === 20 ? 'at least 20' : users.length} rule(s); change or delete them first`,
          users.map((r) => ({ message: `rule ${r.id} uses this channel`, ruleId: r.id })),
        );
      }
      try {
        await tx.getRepository(AlertChannelEntity).delete({ id: ch.id });
      } catch (err) {
        // A rule created meanwhile references it (ON DELETE RESTRICT).
        if ((err as { code?: string } | null)?.code === '23503') throw new ApiError(ErrorCode.ALERT_CHANNEL_IN_USE, `alert channel ${ch.id} is used by a rule`);
        throw err;
      }
      await this.audit.record(tx, ctx, { action: 'alert-channel.delete', targetType: 'alert-channel', targetId: ch.id });
    });
  }

  /** Sends a test notification now and says how the channel answered; recorded like any notification. */
  async testSend(ctx: RequestContext, id: string): Promise<{ result: DeliveryResult; notificationId: string }> {
    const ch = await this.db
      .getRepository(AlertChannelEntity)
      .createQueryBuilder('c')
      .addSelect('c.secretSealed')
      .where('c.id = :id AND c.tenant_id = :tenantId', { id: isUuid(id) ? id : '00000000-0000-0000-0000-000000000000', tenantId: ctx.tenantId })
      .getOne();
    if (!ch) throw new ApiError(ErrorCode.ALERT_CHANNEL_NOT_FOUND, `alert channel ${id} does not exist`);
    const tenant = await this.db.getRepository(TenantEntity).findOneByOrFail({ id: ctx.tenantId });
    const payload: AlertNotificationPayload = { event: 'test', tenantId: ctx.tenantId, alert: null, rule: null, subject: null, run: null };
    const notificationId = await this.db.transaction((tx) => enqueueNotification(tx, { tenantId: ctx.tenantId, alertId: null, channelId: ch.id, payload, heldByCaller: true }));
    const result = await this.delivery.deliver(
      notificationId,
      { id: ch.id, tenantId: ch.tenantId, tenantName: tenant.name, type: ch.type, url: ch.url, emailTo: ch.emailTo, secretSealed: ch.secretSealed },
      payload,
    );
    this.metrics.alertNotification(ch.type, result.outcome);
    // A test is not retried: it reports what happened now.
    await this.db.query(
      `UPDATE alert_notifications SET attempts = 1, status = $2, last_error = $3, sent_at = CASE WHEN $2 = 'sent' THEN now() END WHERE id = $1`,
      [notificationId, result.outcome === 'sent' ? 'sent' : 'failed', result.error],
    );
    return { result, notificationId };
  }
}
