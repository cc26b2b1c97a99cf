import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { AuditEventEntity } from '@task-scheduler/db';
import { DataSource } from 'typeorm';
import { PLATFORM_PERMISSION, RequirePermission } from '../auth/permissions';
import { ApiError, ErrorCode } from '../common/api-error';
import { Ctx } from '../auth/request-context';
import type { RequestContext } from '../auth/request-context';
import { keysetPage } from '../common/pagination';
import { AuditEventPage, AuditEventResponse, ListAuditEventsQueryDto } from './dtos/audit-event.dto';

/** Read-only view of the audit log; the API has no route that changes or deletes audit events. */
@ApiTags('audit')
@ApiSecurity('api-key')
@Controller('v1/audit-events')
export class AuditController {
  constructor(private readonly db: DataSource) {}

  @Get()
  @RequirePermission('audit:read')
  @ApiOperation({ summary: "List your tenant's audit events, newest first (the platform admin may name a tenant or all)" })
  @ApiOkResponse({ type: AuditEventPage })
  async list(@Ctx() ctx: RequestContext, @Query() q: ListAuditEventsQueryDto): Promise<AuditEventPage> {
    const qb = this.db.getRepository(AuditEventEntity).createQueryBuilder('a');
    if (q.tenantId && !ctx.platformAdmin) {
      throw new ApiError(ErrorCode.FORBIDDEN, 'only the platform admin may read other tenants’ audit events', {
        permission: PLATFORM_PERMISSION,
      });
    }
    const scope = q.tenantId ?? ctx.tenantId;
    // Authentication failures with an unknown key belong to no tenant; the platform admin sees them under `all`.
    if (scope !== 'all') qb.where('a.tenant_id = :tenantId', { tenantId: scope });
    if (q.outcome) qb.andWhere('a.outcome = :outcome', { outcome: q.outcome });
    if (q.action) qb.andWhere('a.action = :action', { action: q.action });
    const page = await keysetPage(qb, 'a', q.limit ?? 50, q.cursor);
    return { items: page.items.map(AuditEventResponse.from), nextCursor: page.nextCursor };
  }
}
