import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiPropertyOptional,
  ApiSecurity,
  ApiTags,
} from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsBoolean, IsISO8601, IsOptional, IsUUID } from 'class-validator';
import { RequirePermission } from '../auth/permissions';
import { Ctx } from '../auth/request-context';
import type { RequestContext } from '../auth/request-context';
import { ListQueryDto } from '../common/list-query.dto';
import { mapPage } from '../common/page.dto';
import type { Page } from '../common/pagination';
import { SchedulePreviewResponse } from './dtos/preview.response';
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

class ListSchedulesQueryDto extends ListQueryDto {
  @ApiPropertyOptional() @IsOptional() @IsUUID() taskId?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @Transform(({ value }) => (value === 'true' ? true : value === 'false' ? false : value))
  @IsBoolean()
  paused?: boolean;
}

class FiresQueryDto {
  @ApiPropertyOptional({ description: 'Default: 24 hours ago.' }) @IsOptional() @IsISO8601({ strict: true }) from?: string;
  @ApiPropertyOptional({ description: 'Default: now.' }) @IsOptional() @IsISO8601({ strict: true }) to?: string;
}

@ApiTags('schedules')
@ApiSecurity('api-key')
@Controller('v1/schedules')
export class SchedulesController {
  constructor(
    private readonly schedules: SchedulesService,
    private readonly previews: SchedulePreviewService,
  ) {}

  private async full(s: Awaited<ReturnType<SchedulesService['get']>>): Promise<ScheduleResponse> {
    const [live, lastRun] = await Promise.all([this.schedules.live(s), this.schedules.lastRun(s)]);
    return ScheduleResponse.from(s, this.schedules.uiUrl(s), live, lastRun);
  }

  @Post()
  @ApiOperation({ summary: 'Create a schedule (and its Temporal Schedule)' })
  @ApiCreatedResponse({ type: ScheduleResponse })
  @RequirePermission('schedules:write')
  async create(@Ctx() ctx: RequestContext, @Body() dto: CreateScheduleDto): Promise<ScheduleResponse> {
    return this.full(await this.schedules.create(ctx, dto));
  }

  @Post('preview')
  @HttpCode(200)
  @ApiOperation({ summary: 'Preview the fire times of a spec before saving it' })
  @ApiOkResponse({ type: SchedulePreviewResponse })
  @RequirePermission('schedules:read')
  async previewSpec(
    @Ctx() ctx: RequestContext,
    @Body() dto: PreviewSpecDto,
    @Query() q: PreviewQueryDto,
  ): Promise<SchedulePreviewResponse> {
    const stored = this.schedules.validateSpec(dto, 'spec');
    const calendars = await this.schedules.calendarsFor(ctx, dto.excludeCalendarIds ?? []);
    const spec = temporalSpecOf(stored, calendars);
    return this.previews.preview({ spec }, spec, q.from ? new Date(q.from) : new Date(), q.count ?? 10);
  }

  @Get()
  @ApiOperation({ summary: 'List schedules, newest first' })
  @ApiOkResponse({ type: SchedulePage })
  @RequirePermission('schedules:read')
  async list(@Ctx() ctx: RequestContext, @Query() q: ListSchedulesQueryDto): Promise<Page<ScheduleResponse>> {
    const page = await this.schedules.list(ctx, { limit: q.limit ?? 50, cursor: q.cursor, taskId: q.taskId, paused: q.paused });
    return mapPage(page, (s) => ScheduleResponse.from(s, this.schedules.uiUrl(s)));
  }

  @Get(':id')
  @ApiOperation({ summary: 'Get a schedule with its next fires, counters and last result' })
  @ApiOkResponse({ type: ScheduleResponse })
  @RequirePermission('schedules:read')
  async get(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<ScheduleResponse> {
    return this.full(await this.schedules.get(ctx, id));
  }

  @Patch(':id')
  @ApiOperation({ summary: 'Change a schedule (spec replaced whole, policies merged)' })
  @ApiOkResponse({ type: ScheduleResponse })
  @RequirePermission('schedules:write')
  async update(@Ctx() ctx: RequestContext, @Param('id') id: string, @Body() dto: UpdateScheduleDto): Promise<ScheduleResponse> {
    return this.full(await this.schedules.update(ctx, id, dto));
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a schedule (its runs stay)' })
  @ApiNoContentResponse()
  @RequirePermission('schedules:write')
  async remove(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<void> {
    await this.schedules.remove(ctx, id);
  }

  @Post(':id/pause')
  @HttpCode(200)
  @ApiOperation({ summary: 'Pause a schedule, with a note' })
  @ApiOkResponse({ type: ScheduleResponse })
  @RequirePermission('schedules:write')
  async pause(@Ctx() ctx: RequestContext, @Param('id') id: string, @Body() dto: PauseScheduleDto): Promise<ScheduleResponse> {
    return this.full(await this.schedules.setPaused(ctx, id, true, dto.note));
  }

  @Post(':id/resume')
  @HttpCode(200)
  @ApiOperation({ summary: 'Resume a paused schedule' })
  @ApiOkResponse({ type: ScheduleResponse })
  @RequirePermission('schedules:write')
  async resume(@Ctx() ctx: RequestContext, @Param('id') id: string, @Body() dto: PauseScheduleDto): Promise<ScheduleResponse> {
    return this.full(await this.schedules.setPaused(ctx, id, false, dto.note));
  }

  @Post(':id/trigger')
  @HttpCode(202)
  @ApiOperation({ summary: "Fire now, under the schedule's overlap policy unless another is given" })
  @ApiAcceptedResponse()
  @RequirePermission('runs:execute')
  async trigger(@Ctx() ctx: RequestContext, @Param('id') id: string, @Body() dto: TriggerScheduleDto): Promise<{ triggered: true }> {
    await this.schedules.trigger(ctx, id, dto.overlap);
    return { triggered: true };
  }

  @Post(':id/backfill')
  @HttpCode(202)
  @ApiOperation({ summary: 'Run the fires of a past range (by default only those without a run)' })
  @ApiAcceptedResponse({ type: BackfillResponse })
  @RequirePermission('runs:execute')
  async backfill(@Ctx() ctx: RequestContext, @Param('id') id: string, @Body() dto: BackfillScheduleDto): Promise<BackfillResponse> {
    return this.schedules.backfill(ctx, id, dto);
  }

  @Get(':id/preview')
  @ApiOperation({ summary: 'Next fire times (up to 1000) in UTC and local time, with DST transitions flagged' })
  @ApiOkResponse({ type: SchedulePreviewResponse })
  @RequirePermission('schedules:read')
  async preview(@Ctx() ctx: RequestContext, @Param('id') id: string, @Query() q: PreviewQueryDto): Promise<SchedulePreviewResponse> {
    const s = await this.schedules.get(ctx, id);
    const calendars = await this.schedules.calendarsFor(ctx, s.excludeCalendarIds);
    const spec = temporalSpecOf(s.spec, calendars);
    return this.previews.preview({ temporalScheduleId: s.temporalScheduleId }, spec, q.from ? new Date(q.from) : new Date(), q.count ?? 10);
  }

  @Get(':id/fires')
  @ApiOperation({ summary: 'Fires in a time range: those that ran (with lateness) and those that did not, with the reason' })
  @ApiOkResponse({ type: FireListResponse })
  @RequirePermission('schedules:read')
  async fires(@Ctx() ctx: RequestContext, @Param('id') id: string, @Query() q: FiresQueryDto): Promise<FireListResponse> {
    const to = q.to ? new Date(q.to) : new Date();
    const from = q.from ? new Date(q.from) : new Date(to.getTime() - 86_400_000);
    const { items, nextFrom } = await this.schedules.fires(ctx, id, from, to, 1000);
    return { items: items.map(FireResponse.from), nextFrom };
  }
}
