import { Injectable } from '@nestjs/common';
import { AuditEventEntity } from '@task-scheduler/db';
import { DataSource } from 'typeorm';
import type { EntityManager } from 'typeorm';
import type { RequestContext } from '../auth/request-context';
import { ApiError, ErrorCode } from '../common/api-error';
import { keysetPage } from '../common/pagination';
import type { Page } from '../common/pagination';
import { PLATFORM_PERMISSION } from '../auth/permissions';

export interface AuditRecord {
  action: string;
  targetType: string;
  targetId: string | null;
  outcome?: 'success' | 'failure';
  details?: Record<string, unknown>;
}

export interface AuditQuery {
  limit: number;
  cursor?: string;
  action?: string;
  outcome?: 'success' | 'failure';
  /** A tenant id or `all`; platform admin only. */
  tenantId?: string;
}

/** Token callers have no key id; their subject goes into the details instead. */
function actorDetails(ctx: RequestContext): Record<string, unknown> {
  return ctx.apiKeyId ? {} : { actor: ctx.actor };
}

/**
 * The append-only audit log. Changes are recorded inside the caller's
 * transaction, so a change and its audit row commit together; refusals and
 * authentication failures are recorded on their own.
 */
@Injectable()
export class AuditService {
  constructor(private readonly db: DataSource) {}

  async record(tx: EntityManager, ctx: RequestContext, rec: AuditRecord): Promise<void> {
    await this.insert(tx, {
      tenantId: ctx.tenantId,
      actorKeyId: ctx.apiKeyId,
      action: rec.action,
      targetType: rec.targetType,
      targetId: rec.targetId,
      requestId: ctx.requestId,
      outcome: rec.outcome ?? 'success',
      details: { ...(rec.details ?? {}), ...actorDetails(ctx) },
    });
  }

  /** A change the platform made by itself (a background job), with `actor` naming the job: `system:<job>`. */
  async recordSystem(tx: EntityManager, tenantId: string, actor: `system:${string}`, rec: AuditRecord): Promise<void> {
    await this.insert(tx, {
      tenantId,
      actorKeyId: null,
      action: rec.action,
      targetType: rec.targetType,
      targetId: rec.targetId,
      requestId: null,
      outcome: rec.outcome ?? 'success',
      details: { ...(rec.details ?? {}), actor },
    });
  }

  /** A failed authentication: who tried (key prefix when known), where, why. */
  async recordAuthFailure(f: {
    requestId: string;
    tenantId: string | null;
    reason: string;
    prefix?: string;
    route: string;
  }): Promise<void> {
    await this.insert(this.db.manager, {
      tenantId: f.tenantId,
      actorKeyId: null,
      action: 'auth.failure',
      targetType: 'route',
      targetId: f.route,
      requestId: f.requestId,
      outcome: 'failure',
      details: { reason: f.reason, ...(f.prefix ? { prefix: f.prefix } : {}) },
    });
  }

  /** A mutating request that was refused after authentication; its own transaction was rolled back. */
  async recordFailedMutation(ctx: RequestContext, route: string, code: string): Promise<void> {
    await this.insert(this.db.manager, {
      tenantId: ctx.tenantId,
      actorKeyId: ctx.apiKeyId,
      action: 'request.failed',
      targetType: 'route',
      targetId: route,
      requestId: ctx.requestId,
      outcome: 'failure',
      details: { code, ...actorDetails(ctx) },
    });
  }

  /** The caller's tenant's events, newest first; the platform admin may name a tenant or `all`. */
  list(ctx: RequestContext, q: AuditQuery): Promise<Page<AuditEventEntity>> {
    if (q.tenantId && !ctx.platformAdmin) {
      throw new ApiError(ErrorCode.FORBIDDEN, 'only the platform admin may read other tenants’ audit events', [
        { field: 'tenantId', message: `reading another tenant needs ${PLATFORM_PERMISSION}`, permission: PLATFORM_PERMISSION },
      ]);
    }
    const qb = this.db.getRepository(AuditEventEntity).createQueryBuilder('a');
    const scope = q.tenantId ?? ctx.tenantId;
    // Authentication failures with an unknown key belong to no tenant; the platform admin sees them under `all`.
    if (scope !== 'all') qb.where('a.tenant_id = :tenantId', { tenantId: scope });
    if (q.outcome) qb.andWhere('a.outcome = :outcome', { outcome: q.outcome });
    if (q.action) qb.andWhere('a.action = :action', { action: q.action });
    return keysetPage(qb, 'a', q.limit, q.cursor);
  }

  private async insert(em: EntityManager, row: Omit<AuditEventEntity, 'id' | 'createdAt'>): Promise<void> {
    // jsonb takes any object; TypeORM's deep-partial type cannot express Record<string, unknown>.
    await em.getRepository(AuditEventEntity).insert({ ...row, details: row.details as object });
  }
}
