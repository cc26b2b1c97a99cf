import { Injectable } from '@nestjs/common';
import { AuditEventEntity } from '@task-scheduler/db';
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
  async record(tx: EntityManager, ctx: RequestContext, rec: AuditRecord): Promise<void> {
    await tx.getRepository(AuditEventEntity).insert({
      tenantId: ctx.tenantId,
      actorKeyId: ctx.apiKeyId,
      action: rec.action,
      targetType: rec.targetType,
      targetId: rec.targetId,
      requestId: ctx.requestId,
      outcome: rec.outcome ?? 'success',
      details: (rec.details ?? {}) as object,
    });
  }
}
