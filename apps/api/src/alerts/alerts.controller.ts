import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequirePermission } from '../auth/permissions';
import { Ctx } from '../auth/request-context';
import type { RequestContext } from '../auth/request-context';
import { ErrorCode } from '../common/api-error';
import { ListQueryDto } from '../common/list-query.dto';
import { ApiErrors } from '../common/openapi';
import { mapPage } from '../common/page.dto';
import type { Page } from '../common/pagination';
import { AlertChannelsService } from './alert-channels.service';
import { AlertRulesService } from './alert-rules.service';
import { AlertsService } from './alerts.service';
import {
  AlertChannelPage,
  AlertChannelResponse,
  AlertDetailResponse,
  AlertListQueryDto,
  AlertPage,
  AlertResponse,
  AlertRulePage,
  AlertRuleResponse,
  CreateAlertChannelDto,
  CreateAlertRuleDto,
  CreatedAlertChannelResponse,
  TestSendResponse,
  UpdateAlertRuleDto,
} from './dtos/alert.dto';

@ApiTags('alerts')
@Controller('v1/alert-channels')
export class AlertChannelsController {
  constructor(private readonly channels: AlertChannelsService) {}

  @Post()
  @ApiOperation({
    operationId: 'createAlertChannel',
    summary: 'Create an alert channel (signed webhook, Slack incoming webhook, email); a webhook’s secret is in this answer only',
  })
  @ApiErrors(
    ErrorCode.ALERT_CHANNEL_NAME_TAKEN,
    ErrorCode.ALERT_CHANNEL_INVALID,
    ErrorCode.URL_ADDRESS_REFUSED,
    ErrorCode.SECRETS_NOT_CONFIGURED,
    ErrorCode.SMTP_NOT_CONFIGURED,
  )
  @ApiCreatedResponse({ type: CreatedAlertChannelResponse })
  @RequirePermission('tasks:write')
  async create(@Ctx() ctx: RequestContext, @Body() dto: CreateAlertChannelDto): Promise<CreatedAlertChannelResponse> {
    const { channel, secret } = await this.channels.create(ctx, dto);
    return { ...AlertChannelResponse.from(channel), ...(secret ? { secret } : {}) };
  }

  @Get()
  @ApiOperation({ operationId: 'listAlertChannels', summary: 'List alert channels, newest first' })
  @ApiOkResponse({ type: AlertChannelPage })
  @RequirePermission('tasks:read')
  async list(@Ctx() ctx: RequestContext, @Query() q: ListQueryDto): Promise<Page<AlertChannelResponse>> {
    return mapPage(await this.channels.list(ctx, q.limit ?? 50, q.cursor), (c) => AlertChannelResponse.from(c));
  }

  @Get(':id')
  @ApiOperation({ operationId: 'getAlertChannel', summary: 'Get an alert channel (never its secret)' })
  @ApiErrors(ErrorCode.ALERT_CHANNEL_NOT_FOUND)
  @ApiOkResponse({ type: AlertChannelResponse })
  @RequirePermission('tasks:read')
  async get(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<AlertChannelResponse> {
    return AlertChannelResponse.from(await this.channels.get(ctx, id));
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ operationId: 'deleteAlertChannel', summary: 'Delete an alert channel no rule uses' })
  @ApiErrors(ErrorCode.ALERT_CHANNEL_NOT_FOUND, ErrorCode.ALERT_CHANNEL_IN_USE)
  @ApiNoContentResponse()
  @RequirePermission('tasks:write')
  async remove(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<void> {
    await this.channels.remove(ctx, id);
  }

  @Post(':id/test')
  @HttpCode(200)
  @ApiOperation({
    operationId: 'testAlertChannel',
    summary: 'Send a test notification now and report how the channel answered (not retried)',
  })
  @ApiErrors(ErrorCode.ALERT_CHANNEL_NOT_FOUND)
  @ApiOkResponse({ type: TestSendResponse })
  @RequirePermission('tasks:write')
  async test(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<TestSendResponse> {
    const { result, notificationId } = await this.channels.testSend(ctx, id);
    return { delivered: result.outcome === 'sent', status: result.status, error: result.error, notificationId };
  }
}

@ApiTags('alerts')
@Controller('v1/alert-rules')
export class AlertRulesController {
  constructor(private readonly rules: AlertRulesService) {}

  @Post()
  @ApiOperation({ operationId: 'createAlertRule', summary: 'Create an alert rule: when an alert opens and resolves, and whom it tells' })
  @ApiErrors(
    ErrorCode.ALERT_RULE_NAME_TAKEN,
    ErrorCode.ALERT_RULE_INVALID,
    ErrorCode.ALERT_CHANNEL_NOT_FOUND,
    ErrorCode.TASK_NOT_FOUND,
    ErrorCode.SCHEDULE_NOT_FOUND,
  )
  @ApiCreatedResponse({ type: AlertRuleResponse })
  @RequirePermission('tasks:write')
  async create(@Ctx() ctx: RequestContext, @Body() dto: CreateAlertRuleDto): Promise<AlertRuleResponse> {
    return AlertRuleResponse.from(await this.rules.create(ctx, dto));
  }

  @Get()
  @ApiOperation({ operationId: 'listAlertRules', summary: 'List alert rules, newest first' })
  @ApiOkResponse({ type: AlertRulePage })
  @RequirePermission('tasks:read')
  async list(@Ctx() ctx: RequestContext, @Query() q: ListQueryDto): Promise<Page<AlertRuleResponse>> {
    return mapPage(await this.rules.list(ctx, q.limit ?? 50, q.cursor), (r) => AlertRuleResponse.from(r));
  }

  @Get(':id')
  @ApiOperation({ operationId: 'getAlertRule', summary: 'Get an alert rule' })
  @ApiErrors(ErrorCode.ALERT_RULE_NOT_FOUND)
  @ApiOkResponse({ type: AlertRuleResponse })
  @RequirePermission('tasks:read')
  async get(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<AlertRuleResponse> {
    return AlertRuleResponse.from(await this.rules.get(ctx, id));
  }

  @Patch(':id')
  @ApiOperation({ operationId: 'updateAlertRule', summary: 'Change an alert rule (disabling it resolves its firing alerts)' })
  @ApiErrors(ErrorCode.ALERT_RULE_NOT_FOUND, ErrorCode.ALERT_RULE_INVALID, ErrorCode.ALERT_CHANNEL_NOT_FOUND)
  @ApiOkResponse({ type: AlertRuleResponse })
  @RequirePermission('tasks:write')
  async update(@Ctx() ctx: RequestContext, @Param('id') id: string, @Body() dto: UpdateAlertRuleDto): Promise<AlertRuleResponse> {
    return AlertRuleResponse.from(await this.rules.update(ctx, id, dto));
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ operationId: 'deleteAlertRule', summary: 'Delete an alert rule with its alerts' })
  @ApiErrors(ErrorCode.ALERT_RULE_NOT_FOUND)
  @ApiNoContentResponse()
  @RequirePermission('tasks:write')
  async remove(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<void> {
    await this.rules.remove(ctx, id);
  }
}

@ApiTags('alerts')
@Controller('v1/alerts')
export class AlertsController {
  constructor(private readonly alerts: AlertsService) {}

  @Get()
  @ApiOperation({ operationId: 'listAlerts', summary: 'List alerts, newest first, optionally only firing or resolved ones' })
  @ApiOkResponse({ type: AlertPage })
  @RequirePermission('tasks:read')
  async list(@Ctx() ctx: RequestContext, @Query() q: AlertListQueryDto): Promise<Page<AlertResponse>> {
    const page = await this.alerts.list(ctx, { state: q.state, ruleId: q.ruleId, limit: q.limit ?? 50, cursor: q.cursor });
    return mapPage(page, (a) => AlertResponse.from(a));
  }

  @Get(':id')
  @ApiOperation({ operationId: 'getAlert', summary: 'Get an alert with every notification sent for it' })
  @ApiErrors(ErrorCode.ALERT_NOT_FOUND)
  @ApiOkResponse({ type: AlertDetailResponse })
  @RequirePermission('tasks:read')
  async get(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<AlertDetailResponse> {
    const { alert, notifications } = await this.alerts.get(ctx, id);
    return { ...AlertResponse.from(alert), notifications };
  }

  @Post(':id/ack')
  @HttpCode(200)
  @ApiOperation({ operationId: 'ackAlert', summary: 'Acknowledge a firing alert: no more re-notification or escalation' })
  @ApiErrors(ErrorCode.ALERT_NOT_FOUND, ErrorCode.ALERT_NOT_FIRING)
  @ApiOkResponse({ type: AlertResponse })
  @RequirePermission('runs:execute')
  async ack(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<AlertResponse> {
    return AlertResponse.from(await this.alerts.ack(ctx, id));
  }
}
