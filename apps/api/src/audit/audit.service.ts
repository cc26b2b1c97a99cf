import { Injectable } from '@nestjs/common';
import { AuditEventEntity } from '@task-scheduler/db';
import { DataSource } from 'typeorm';
import type { EntityManager } from 'typeorm';
import type { RequestContext } from '../auth/request-context';

export interface AuditRecord {
  action: string;
  targetType: string;
  targetId: string | null;
  outcome?: 'success' | 'failure';
  details?: Record<string, unknown>;
}

/** Appends audit events inside the caller's transaction, so a change and its audit row commit together. */
@Injectable()
export class AuditService {
  constructor(private readonly db: DataSource) {}

  async record(tx: EntityManager, ctx: RequestContext, rec: AuditRecord): Promise<void> {
    await tx.getRepository(AuditEventEntity).insert({
      tenantId: ctx.tenantId,
      actorKeyId: ctx.apiKeyId,
      action: rec.action,
      targetType: rec.targetType,
      targetId: rec.targetId,
      requestId: ctx.requestId,
      outcome: rec.outcome ?? 'success',
      details: { ...(rec.details ?? {}), ...(ctx.apiKeyId ? {} : { actor: ctx.actor }) },
    });
  }

  /** A failed authentication: who tried (key prefix when known), where, why. Written on its own. */
  async recordAuthFailure(f: {
    requestId: string;
    tenantId: string | null;
    reason: string;
    prefix?: string;
    route: string;
  }): Promise<void> {
    await this.db.getRepository(AuditEventEntity).insert({
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
    await this.db.getRepository(AuditEventEntity).insert({
      tenantId: ctx.tenantId,
      actorKeyId: ctx.apiKeyId,
      action: 'request.failed',
      targetType: 'route',
      targetId: route,
      requestId: ctx.requestId,
      outcome: 'failure',
      details: { code, ...(ctx.apiKeyId ? {} : { actor: ctx.actor }) },
    });
  }
}
