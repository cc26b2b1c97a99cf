import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequirePermission } from '../auth/permissions';
import { Ctx } from '../auth/request-context';
import type { RequestContext } from '../auth/request-context';
import { mapPage } from '../common/page.dto';
import type { Page } from '../common/pagination';
import { AuditService } from './audit.service';
import { AuditEventPage, AuditEventResponse, ListAuditEventsQueryDto } from './dtos/audit-event.dto';

/** Read-only view of the audit log; the API has no route that changes or deletes audit events. */
@ApiTags('audit')
@Controller('v1/audit-events')
export class AuditController {
  constructor(private readonly audit: AuditService) {}

  @Get()
  @RequirePermission('audit:read')
  @ApiOperation({
    operationId: 'listAuditEvents',
    summary: "List your tenant's audit events, newest first (the platform admin may name a tenant or all)",
  })
  @ApiOkResponse({ type: AuditEventPage })
  async list(@Ctx() ctx: RequestContext, @Query() q: ListAuditEventsQueryDto): Promise<Page<AuditEventResponse>> {
    const page = await this.audit.list(ctx, { ...q, limit: q.limit ?? 50 });
    return mapPage(page, AuditEventResponse.from);
  }
}
