import { Injectable } from '@nestjs/common';
import { AlertRuleEntity, resolveAlert } from '@task-scheduler/db';
import { DataSource } from 'typeorm';
import type { EntityManager } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import type { RequestContext } from '../auth/request-context';
import { ApiError, ErrorCode, fieldError } from '../common/api-error';
import { isUniqueViolation } from '../common/db-errors';
import { isUuid, keysetPage } from '../common/pagination';
import type { Page } from '../common/pagination';
import type { CreateAlertRuleDto, UpdateAlertRuleDto } from './dtos/alert.dto';

type RuleFields = Pick<
  AlertRuleEntity,
  | 'kind'
  | 'taskId'
  | 'scheduleId'
  | 'failures'
  | 'recoveries'
  | 'thresholdSeconds'
  | 'channelId'
  | 'escalationChannelId'
  | 'escalateAfterSeconds'
  | 'renotifySeconds'
>;

const invalid = (field: string, message: string): ApiError => fieldError(ErrorCode.ALERT_RULE_INVALID, field, message);

/** The combinations a rule's kind allows (the table's CHECKs say the same; this says it in words). */
function checkShape(r: RuleFields): void {
  const timed = r.kind === 'queued_too_long' || r.kind === 'running_too_long';
  if (timed && r.thresholdSeconds === null) throw invalid('thresholdSeconds', `a ${r.kind} rule needs thresholdSeconds`);
  if (!timed && r.thresholdSeconds !== null) throw invalid('thresholdSeconds', `thresholdSeconds goes with queued_too_long and running_too_long, not ${r.kind}`);
  if (r.kind === 'missed_fire' && r.taskId !== null) throw invalid('taskId', 'a missed_fire rule watches schedules: give scheduleId, or nothing for all');
  if (r.kind !== 'missed_fire' && r.scheduleId !== null) throw invalid('scheduleId', 'scheduleId goes with missed_fire rules only');
  if ((r.escalationChannelId === null) !== (r.escalateAfterSeconds === null)) {
    throw invalid(r.escalationChannelId === null ? 'escalationChannelId' : 'escalateAfterSeconds', 'escalationChannelId and escalateAfterSeconds go together');
  }
  if (r.escalationChannelId !== null && r.escalationChannelId === r.channelId) {
    throw invalid('escalationChannelId', 'escalation goes to a second channel, not the rule’s own');
  }
}

/** A tenant's alert rules; their targets and channels must be the tenant's own. */
@Injectable()
export class AlertRulesService {
  constructor(
    private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  private async checkReferences(tx: EntityManager, ctx: RequestContext, r: RuleFields): Promise<void> {
    const exists = async (sql: string, id: string): Promise<boolean> => (await tx.query(sql, [id, ctx.tenantId])).length > 0;
    if (r.taskId && !(await exists(`SELECT 1 FROM tasks WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL`, r.taskId))) {
      throw new ApiError(ErrorCode.TASK_NOT_FOUND, `task ${r.taskId} does not exist`, [{ field: 'taskId', message: 'no such task' }]);
    }
    if (r.scheduleId && !(await exists(`SELECT 1 FROM schedules WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL`, r.scheduleId))) {
      throw new ApiError(ErrorCode.SCHEDULE_NOT_FOUND, `schedule ${r.scheduleId} does not exist`, [{ field: 'scheduleId', message: 'no such schedule' }]);
    }
    for (const [field, id] of [
      ['channelId', r.channelId],
      ['escalationChannelId', r.escalationChannelId],
    ] as const) {
      // FOR KEY SHARE: a channel deleted meanwhile waits for this transaction, then sees the rule and refuses.
      if (id && !(await exists(`SELECT 1 FROM alert_channels WHERE id = $1 AND tenant_id = $2 FOR KEY SHARE`, id))) {
        throw new ApiError(ErrorCode.ALERT_CHANNEL_NOT_FOUND, `alert channel ${id} does not exist`, [{ field, message: 'no such alert channel' }]);
      }
    }
  }

  async create(ctx: RequestContext, dto: CreateAlertRuleDto): Promise<AlertRuleEntity> {
    const fields: RuleFields = {
      kind: dto.kind,
      taskId: dto.taskId ?? null,
      scheduleId: dto.scheduleId ?? null,
      failures: dto.failures ?? 1,
      recoveries: dto.recoveries ?? 1,
      thresholdSeconds: dto.thresholdSeconds ?? null,
      channelId: dto.channelId,
      escalationChannelId: dto.escalationChannelId ?? null,
      escalateAfterSeconds: dto.escalateAfterSeconds ?? null,
      renotifySeconds: dto.renotifySeconds ?? null,
    };
    checkShape(fields);
    return this.db.transaction(async (tx) => {
      await this.checkReferences(tx, ctx, fields);
      const repo = tx.getRepository(AlertRuleEntity);
      let rule: AlertRuleEntity;
      try {
        rule = await repo.save(repo.create({ tenantId: ctx.tenantId, name: dto.name, enabled: dto.enabled ?? true, ...fields }));
      } catch (err) {
        if (isUniqueViolation(err)) throw new ApiError(ErrorCode.ALERT_RULE_NAME_TAKEN, `an alert rule named ${JSON.stringify(dto.name)} already exists`);
        throw err;
      }
      await this.audit.record(tx, ctx, { action: 'alert-rule.create', targetType: 'alert-rule', targetId: rule.id });
      return rule;
    });
  }

  async get(ctx: RequestContext, id: string, tx: EntityManager = this.db.manager, lock = false): Promise<AlertRuleEntity> {
    const rule = isUuid(id)
      ? await tx.getRepository(AlertRuleEntity).findOne({ where: { id, tenantId: ctx.tenantId }, ...(lock ? { lock: { mode: 'pessimistic_write' as const } } : {}) })
      : null;
    if (!rule) throw new ApiError(ErrorCode.ALERT_RULE_NOT_FOUND, `alert rule ${id} does not exist`);
    return rule;
  }

  list(ctx: RequestContext, limit: number, cursor?: string): Promise<Page<AlertRuleEntity>> {
    const qb = this.db.getRepository(AlertRuleEntity).createQueryBuilder('r').where('r.tenant_id = :tenantId', { tenantId: ctx.tenantId });
    return keysetPage(qb, 'r', limit, cursor);
  }

  /** Changes a rule. Counts so far stay; a disabled rule's firing alerts are resolved (nobody would resolve them). */
  async update(ctx: RequestContext, id: string, dto: UpdateAlertRuleDto): Promise<AlertRuleEntity> {
    return this.db.transaction(async (tx) => {
      const cur = await this.get(ctx, id, tx, true);
      const next: AlertRuleEntity = { ...cur };
      for (const key of ['failures', 'recoveries', 'thresholdSeconds', 'channelId', 'escalationChannelId', 'escalateAfterSeconds', 'renotifySeconds', 'enabled'] as const) {
        if (dto[key] !== undefined) (next as unknown as Record<string, unknown>)[key] = dto[key];
      }
      checkShape(next);
      await this.checkReferences(tx, ctx, { ...next, taskId: null, scheduleId: null });
      await tx.getRepository(AlertRuleEntity).save(next);
      const resolved = cur.enabled && !next.enabled ? await this.resolveAll(tx, ctx, cur) : [];
      const changed = Object.keys(dto).filter((k) => dto[k as keyof UpdateAlertRuleDto] !== undefined);
      await this.audit.record(tx, ctx, {
        action: 'alert-rule.update',
        targetType: 'alert-rule',
        targetId: cur.id,
        details: { changedFields: changed, ...(resolved.length ? { resolvedAlerts: resolved } : {}) },
      });
      return tx.getRepository(AlertRuleEntity).findOneByOrFail({ id: cur.id });
    });
  }

  /** Resolves a rule's firing alerts as it is disabled, telling the channels that were told they fire. */
  private async resolveAll(tx: EntityManager, ctx: RequestContext, rule: AlertRuleEntity): Promise<string[]> {
    const firing: { subject_type: 'task' | 'schedule'; subject_id: string; name: string | null }[] = await tx.query(
      `SELECT a.subject_type, a.subject_id, coalesce(k.name, s.name) AS name FROM alerts a
         LEFT JOIN tasks k ON a.subject_type = 'task' AND k.id = a.subject_id
         LEFT JOIN schedules s ON a.subject_type = 'schedule' AND s.id = a.subject_id
        WHERE a.rule_id = $1 AND a.state = 'firing' ORDER BY a.id`,
      [rule.id],
    );
    const ids: string[] = [];
    for (const f of firing) {
      const id = await resolveAlert(tx, {
        rule: {
          id: rule.id,
          tenant_id: rule.tenantId,
          name: rule.name,
          kind: rule.kind,
          failures: rule.failures,
          recoveries: rule.recoveries,
          channel_id: rule.channelId,
          escalation_channel_id: rule.escalationChannelId,
        },
        subject: { type: f.subject_type, id: f.subject_id, name: f.name ?? f.subject_id },
        summary: `Alert rule "${rule.name}" was disabled by ${ctx.actor}`,
        details: { disabledBy: ctx.actor },
      });
      if (id) ids.push(id);
    }
    return ids;
  }

  /** Deletes a rule with its counts and alerts. */
  async remove(ctx: RequestContext, id: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      const rule = await this.get(ctx, id, tx, true);
      await tx.getRepository(AlertRuleEntity).delete({ id: rule.id });
      await this.audit.record(tx, ctx, { action: 'alert-rule.delete', targetType: 'alert-rule', targetId: rule.id });
    });
  }
}
