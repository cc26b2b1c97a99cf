import { Body, Controller, Delete, Get, HttpCode, Inject, Put } from '@nestjs/common';
import { ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import type { AppConfig } from '@task-scheduler/config';
import type { AlertSpec } from '@task-scheduler/contracts';
import { TenantEntity } from '@task-scheduler/db';
import { DataSource } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import { RequirePermission } from '../auth/permissions';
import { Ctx } from '../auth/request-context';
import type { RequestContext } from '../auth/request-context';
import { ErrorCode } from '../common/api-error';
import { ApiErrors } from '../common/openapi';
import { checkUrlAddress } from '../common/url-address';
import { APP_CONFIG } from '../infra/tokens';
import { AlertSpecDto } from '../tasks/dtos/create-task.dto';

class AlertSettingsResponse {
  @ApiPropertyOptional({ type: AlertSpecDto, nullable: true }) settings!: AlertSpec | null;
}

/**
 * The tenant's default alert webhook: used for every task that has no
 * `alerts` of its own.
 */
@ApiTags('alerts')
@Controller('v1/alert-settings')
export class AlertSettingsController {
  constructor(
    private readonly db: DataSource,
    private readonly audit: AuditService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Get()
  @ApiOperation({ operationId: 'getAlertSettings', summary: "Get the tenant's default alert settings" })
  @ApiOkResponse({ type: AlertSettingsResponse })
  @RequirePermission('tasks:read')
  async get(@Ctx() ctx: RequestContext): Promise<AlertSettingsResponse> {
    const tenant = await this.db.getRepository(TenantEntity).findOneByOrFail({ id: ctx.tenantId });
    return { settings: tenant.alertSettings };
  }

  @Put()
  @ApiOperation({
    operationId: 'setAlertSettings',
    summary: "Set the tenant's default alert webhook (tasks with their own alerts keep theirs)",
  })
  @ApiErrors(ErrorCode.URL_ADDRESS_REFUSED)
  @ApiOkResponse({ type: AlertSettingsResponse })
  @RequirePermission('tasks:write')
  async put(@Ctx() ctx: RequestContext, @Body() dto: AlertSpecDto): Promise<AlertSettingsResponse> {
    checkUrlAddress('webhookUrl', dto.webhookUrl, this.config.HTTP_ALLOW_CIDRS);
    const settings: AlertSpec = { ...dto };
    await this.db.transaction(async (tx) => {
      await tx.getRepository(TenantEntity).update({ id: ctx.tenantId }, { alertSettings: settings });
      await this.audit.record(tx, ctx, { action: 'alert-settings.update', targetType: 'tenant', targetId: ctx.tenantId });
    });
    return { settings };
  }

  @Delete()
  @HttpCode(204)
  @ApiOperation({ operationId: 'deleteAlertSettings', summary: "Remove the tenant's default alert webhook" })
  @ApiNoContentResponse()
  @RequirePermission('tasks:write')
  async remove(@Ctx() ctx: RequestContext): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.getRepository(TenantEntity).update({ id: ctx.tenantId }, { alertSettings: null });
      await this.audit.record(tx, ctx, { action: 'alert-settings.delete', targetType: 'tenant', targetId: ctx.tenantId });
    });
  }
}
