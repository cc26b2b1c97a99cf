import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query, Res } from '@nestjs/common';
import type { Response } from 'express';
import {
  ApiAcceptedResponse,
  ApiCreatedResponse,
  ApiExtraModels,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiPropertyOptional,
  ApiTags,
  getSchemaPath,
} from '@nestjs/swagger';
import { ApiErrors, ApiResponseHeaders } from '../common/openapi';
import { ErrorCode } from '../common/api-error';
import { Transform } from 'class-transformer';
import { IsBoolean, IsISO8601, IsUUID } from 'class-validator';
import { Optional } from '../common/validation';
import { RequirePermission } from '../auth/permissions';
import { Ctx } from '../auth/request-context';
import type { RequestContext } from '../auth/request-context';
import { ListQueryDto } from '../common/list-query.dto';
import { mapPage } from '../common/page.dto';
import type { Page } from '../common/pagination';
import { SchedulePreviewResponse } from './dtos/preview.response';
import { validateScheduleSpec } from './spec-validation';
import {
  BackfillScheduleDto,
  CreateScheduleDto,
  PauseScheduleDto,
  PreviewQueryDto,
  PreviewSpecDto,
  TriggerScheduleDto,
  UpdateScheduleDto,
} from './dtos/schedule.dto';
import { BackfillResponse, FireListResponse, FireResponse, SchedulePage, ScheduleResponse } from './dtos/schedule.response';
import { SchedulePreviewService } from './schedule-preview.service';
import { temporalSpecOf } from './schedule-translator';
import { SchedulesService } from './schedules.service';
import { RunResponse } from '../runs/dtos/run.response';
import { RunsService } from '../runs/runs.service';
import { PipelineRunResponse } from '../pipeline-runs/dtos/pipeline-run.response';
import { PipelineRunsService } from '../pipeline-runs/pipeline-runs.service';

class ListSchedulesQueryDto extends ListQueryDto {
  @ApiPropertyOptional() @Optional() @IsUUID() taskId?: string;
  @ApiPropertyOptional() @Optional() @IsUUID() pipelineId?: string;

  @ApiPropertyOptional()
  @Optional()
  @Transform(({ value }) => (value === 'true' ? true : value === 'false' ? false : value))
  @IsBoolean()
  paused?: boolean;
}

class FiresQueryDto {
  @ApiPropertyOptional({ description: 'Default: 24 hours ago.' }) @Optional() @IsISO8601({ strict: true }) from?: string;
  @ApiPropertyOptional({ description: 'Default: now.' }) @Optional() @IsISO8601({ strict: true }) to?: string;
}

@ApiTags('schedules')
@Controller('v1/schedules')
export class SchedulesController {
  constructor(
    private readonly schedules: SchedulesService,
    private readonly previews: SchedulePreviewService,
    private readonly runs: RunsService,
    private readonly pipelineRuns: PipelineRunsService,
  ) {}

  private async full(s: Awaited<ReturnType<SchedulesService['get']>>): Promise<ScheduleResponse> {
    const [live, lastRun] = await Promise.all([this.schedules.live(s), this.schedules.lastRun(s)]);
    return ScheduleResponse.from(s, this.schedules.uiUrl(s), live, lastRun);
  }

  @Post()
  @ApiOperation({ operationId: 'createSchedule', summary: 'Create a schedule (and its Temporal Schedule)' })
  @ApiErrors(
    ErrorCode.SCHEDULE_NAME_TAKEN,
    ErrorCode.SCHEDULE_TASK_NOT_FOUND,
    ErrorCode.SCHEDULE_PIPELINE_NOT_FOUND,
    ErrorCode.SCHEDULE_TARGET_INVALID,
    ErrorCode.TASK_DISABLED,
    ErrorCode.PIPELINE_PARAMS_INVALID,
    ErrorCode.SCHEDULE_INVALID_CRON,
    ErrorCode.SCHEDULE_INVALID_TIMEZONE,
    ErrorCode.SCHEDULE_INVALID_RANGE,
    ErrorCode.SCHEDULE_INVALID_CALENDAR,
    ErrorCode.SCHEDULE_INVALID_INTERVAL,
    ErrorCode.SCHEDULE_SPEC_EMPTY,
    ErrorCode.SCHEDULE_NEVER_FIRES,
    ErrorCode.SCHEDULE_REJECTED,
    ErrorCode.CALENDAR_NOT_FOUND,
    ErrorCode.TEMPORAL_UNAVAILABLE,
  )
  @ApiCreatedResponse({ type: ScheduleResponse })
  @RequirePermission('schedules:write')
  async create(@Ctx() ctx: RequestContext, @Body() dto: CreateScheduleDto): Promise<ScheduleResponse> {
    return this.full(await this.schedules.create(ctx, dto));
  }

  @Post('preview')
  @HttpCode(200)
  @ApiOperation({ operationId: 'previewScheduleSpec', summary: 'Preview the fire times of a spec before saving it' })
  @ApiErrors(
    ErrorCode.SCHEDULE_INVALID_CRON,
    ErrorCode.SCHEDULE_INVALID_TIMEZONE,
    ErrorCode.SCHEDULE_INVALID_RANGE,
    ErrorCode.SCHEDULE_INVALID_CALENDAR,
    ErrorCode.SCHEDULE_INVALID_INTERVAL,
    ErrorCode.SCHEDULE_SPEC_EMPTY,
    ErrorCode.SCHEDULE_NEVER_FIRES,
    ErrorCode.SCHEDULE_REJECTED,
    ErrorCode.CALENDAR_NOT_FOUND,
    ErrorCode.TEMPORAL_UNAVAILABLE,
  )
  @ApiOkResponse({ type: SchedulePreviewResponse })
  @RequirePermission('schedules:read')
  async previewSpec(
    @Ctx() ctx: RequestContext,
    @Body() dto: PreviewSpecDto,
    @Query() q: PreviewQueryDto,
  ): Promise<SchedulePreviewResponse> {
    const stored = validateScheduleSpec(dto, 'spec');
    const calendars = await this.schedules.calendarsFor(ctx, dto.excludeCalendarIds ?? []);
    const spec = temporalSpecOf(stored, calendars);
    return this.previews.preview({ spec }, spec, q.from ? new Date(q.from) : new Date(), q.count ?? 10);
  }

  @Get()
  @ApiOperation({ operationId: 'listSchedules', summary: 'List schedules, newest first' })
  @ApiOkResponse({ type: SchedulePage })
  @RequirePermission('schedules:read')
  async list(@Ctx() ctx: RequestContext, @Query() q: ListSchedulesQueryDto): Promise<Page<ScheduleResponse>> {
    const page = await this.schedules.list(ctx, {
      limit: q.limit ?? 50,
      cursor: q.cursor,
      taskId: q.taskId,
      pipelineId: q.pipelineId,
      paused: q.paused,
    });
    return mapPage(page, (s) => ScheduleResponse.from(s, this.schedules.uiUrl(s)));
  }

  @Get(':id')
  @ApiOperation({ operationId: 'getSchedule', summary: 'Get a schedule with its next fires, counters and last result' })
  @ApiErrors(ErrorCode.SCHEDULE_NOT_FOUND)
  @ApiOkResponse({ type: ScheduleResponse })
  @RequirePermission('schedules:read')
  async get(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<ScheduleResponse> {
    return this.full(await this.schedules.get(ctx, id));
  }

  @Patch(':id')
  @ApiOperation({ operationId: 'updateSchedule', summary: 'Change a schedule (spec replaced whole, policies merged)' })
  @ApiErrors(
    ErrorCode.SCHEDULE_NOT_FOUND,
    ErrorCode.SCHEDULE_PIPELINE_NOT_FOUND,
    ErrorCode.SCHEDULE_TARGET_INVALID,
    ErrorCode.PIPELINE_PARAMS_INVALID,
    ErrorCode.SCHEDULE_INVALID_CRON,
    ErrorCode.SCHEDULE_INVALID_TIMEZONE,
    ErrorCode.SCHEDULE_INVALID_RANGE,
    ErrorCode.SCHEDULE_INVALID_CALENDAR,
    ErrorCode.SCHEDULE_INVALID_INTERVAL,
    ErrorCode.SCHEDULE_SPEC_EMPTY,
    ErrorCode.SCHEDULE_NEVER_FIRES,
    ErrorCode.SCHEDULE_REJECTED,
    ErrorCode.CALENDAR_NOT_FOUND,
    ErrorCode.TEMPORAL_UNAVAILABLE,
  )
  @ApiOkResponse({ type: ScheduleResponse })
  @RequirePermission('schedules:write')
  async update(@Ctx() ctx: RequestContext, @Param('id') id: string, @Body() dto: UpdateScheduleDto): Promise<ScheduleResponse> {
    return this.full(await this.schedules.update(ctx, id, dto));
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ operationId: 'deleteSchedule', summary: 'Delete a schedule (its runs stay)' })
  @ApiErrors(ErrorCode.SCHEDULE_NOT_FOUND, ErrorCode.TEMPORAL_UNAVAILABLE)
  @ApiNoContentResponse()
  @RequirePermission('schedules:write')
  async remove(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<void> {
    await this.schedules.remove(ctx, id);
  }

  @Post(':id/pause')
  @HttpCode(200)
  @ApiOperation({ operationId: 'pauseSchedule', summary: 'Pause a schedule, with a note' })
  @ApiErrors(ErrorCode.SCHEDULE_NOT_FOUND, ErrorCode.TEMPORAL_UNAVAILABLE)
  @ApiOkResponse({ type: ScheduleResponse })
  @RequirePermission('schedules:write')
  async pause(@Ctx() ctx: RequestContext, @Param('id') id: string, @Body() dto: PauseScheduleDto): Promise<ScheduleResponse> {
    return this.full(await this.schedules.setPaused(ctx, id, true, dto.note));
  }

  @Post(':id/resume')
  @HttpCode(200)
  @ApiOperation({ operationId: 'resumeSchedule', summary: 'Resume a paused schedule' })
  @ApiErrors(ErrorCode.SCHEDULE_NOT_FOUND, ErrorCode.TEMPORAL_UNAVAILABLE)
  @ApiOkResponse({ type: ScheduleResponse })
  @RequirePermission('schedules:write')
  async resume(@Ctx() ctx: RequestContext, @Param('id') id: string, @Body() dto: PauseScheduleDto): Promise<ScheduleResponse> {
    return this.full(await this.schedules.setPaused(ctx, id, false, dto.note));
  }

  @Post(':id/trigger')
  @HttpCode(202)
  @ApiOperation({ operationId: 'triggerSchedule', summary: "Fire now, under the schedule's overlap policy unless another is given" })
  @ApiErrors(
    ErrorCode.SCHEDULE_NOT_FOUND,
    ErrorCode.SCHEDULE_PIPELINE_NOT_FOUND,
    ErrorCode.TASK_DISABLED,
    ErrorCode.TASK_EGRESS_FORBIDDEN,
    ErrorCode.PIPELINE_PARAMS_INVALID,
    ErrorCode.SCHEDULE_TRIGGER_NOT_STARTED,
    ErrorCode.SCHEDULE_RUN_NOT_RECORDED,
    ErrorCode.TEMPORAL_UNAVAILABLE,
  )
  @ApiResponseHeaders('Location')
  @ApiExtraModels(RunResponse, PipelineRunResponse)
  @ApiAcceptedResponse({
    description: "The run the fire started: a task schedule's run, or a pipeline schedule's pipeline run (Location says which).",
    schema: { oneOf: [{ $ref: getSchemaPath(RunResponse) }, { $ref: getSchemaPath(PipelineRunResponse) }] },
  })
  @RequirePermission('runs:execute')
  async trigger(
    @Ctx() ctx: RequestContext,
    @Param('id') id: string,
    @Body() dto: TriggerScheduleDto,
    @Res({ passthrough: true }) res: Response,
  ): Promise<RunResponse | PipelineRunResponse> {
    const fired = await this.schedules.trigger(ctx, id, dto.overlap);
    if (fired.kind === 'pipeline_run') {
      const { run } = fired;
      res.setHeader('Location', `/v1/pipeline-runs/${run.id}`);
      const names = await this.pipelineRuns.pipelineNames(ctx, [run]);
      return PipelineRunResponse.from(run, names.get(run.pipelineId) ?? '', this.pipelineRuns.uiUrl(run));
    }
    res.setHeader('Location', `/v1/runs/${fired.run.id}`);
    return RunResponse.from(fired.run, this.runs.uiUrl(fired.run));
  }

  @Post(':id/backfill')
  @HttpCode(202)
  @ApiOperation({ operationId: 'backfillSchedule', summary: 'Run the fires of a past range (by default only those without a run)' })
  @ApiErrors(
    ErrorCode.SCHEDULE_NOT_FOUND,
    ErrorCode.SCHEDULE_INVALID_RANGE,
    ErrorCode.SCHEDULE_PIPELINE_NOT_FOUND,
    ErrorCode.TASK_DISABLED,
    ErrorCode.TASK_EGRESS_FORBIDDEN,
    ErrorCode.TEMPORAL_UNAVAILABLE,
  )
  @ApiAcceptedResponse({ type: BackfillResponse })
  @RequirePermission('runs:execute')
  async backfill(@Ctx() ctx: RequestContext, @Param('id') id: string, @Body() dto: BackfillScheduleDto): Promise<BackfillResponse> {
    return this.schedules.backfill(ctx, id, dto);
  }

  @Get(':id/preview')
  @ApiOperation({
    operationId: 'previewSchedule',
    summary: 'Next fire times (up to 1000) in UTC and local time, with DST transitions flagged',
  })
  @ApiErrors(ErrorCode.SCHEDULE_NOT_FOUND, ErrorCode.TEMPORAL_UNAVAILABLE)
  @ApiOkResponse({ type: SchedulePreviewResponse })
  @RequirePermission('schedules:read')
  async preview(@Ctx() ctx: RequestContext, @Param('id') id: string, @Query() q: PreviewQueryDto): Promise<SchedulePreviewResponse> {
    const s = await this.schedules.get(ctx, id);
    const calendars = await this.schedules.calendarsFor(ctx, s.excludeCalendarIds);
    const spec = temporalSpecOf(s.spec, calendars);
    return this.previews.preview({ temporalScheduleId: s.temporalScheduleId }, spec, q.from ? new Date(q.from) : new Date(), q.count ?? 10);
  }

  @Get(':id/fires')
  @ApiOperation({
    operationId: 'listScheduleFires',
    summary: 'Fires in a time range: those that ran (with lateness) and those that did not, with the reason',
  })
  @ApiErrors(ErrorCode.SCHEDULE_NOT_FOUND, ErrorCode.SCHEDULE_INVALID_RANGE)
  @ApiOkResponse({ type: FireListResponse })
  @RequirePermission('schedules:read')
  async fires(@Ctx() ctx: RequestContext, @Param('id') id: string, @Query() q: FiresQueryDto): Promise<FireListResponse> {
    const to = q.to ? new Date(q.to) : new Date();
    const from = q.from ? new Date(q.from) : new Date(to.getTime() - 86_400_000);
    const { items, nextFrom } = await this.schedules.fires(ctx, id, from, to, 1000);
    return { items: items.map(FireResponse.from), nextFrom };
  }
}
