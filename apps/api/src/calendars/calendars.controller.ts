import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiErrors } from '../common/openapi';
import { ErrorCode } from '../common/api-error';
import { RequirePermission } from '../auth/permissions';
import { Ctx } from '../auth/request-context';
import type { RequestContext } from '../auth/request-context';
import { ListQueryDto } from '../common/list-query.dto';
import { mapPage } from '../common/page.dto';
import type { Page } from '../common/pagination';
import { CalendarPage, CalendarResponse, CreateCalendarDto, UpdateCalendarDto } from './dtos/calendar.dto';
import { CalendarsService } from './calendars.service';

@ApiTags('calendars')
@Controller('v1/calendars')
export class CalendarsController {
  constructor(private readonly calendars: CalendarsService) {}

  @Post()
  @ApiOperation({
    operationId: 'createCalendar',
    summary: 'Create a business calendar (holidays, weekly windows) for schedules to exclude',
  })
  @ApiErrors(ErrorCode.CALENDAR_NAME_TAKEN, ErrorCode.SCHEDULE_INVALID_CALENDAR)
  @ApiCreatedResponse({ type: CalendarResponse })
  @RequirePermission('schedules:write')
  async create(@Ctx() ctx: RequestContext, @Body() dto: CreateCalendarDto): Promise<CalendarResponse> {
    return CalendarResponse.from(await this.calendars.create(ctx, dto));
  }

  @Get()
  @ApiOperation({ operationId: 'listCalendars', summary: 'List calendars, newest first' })
  @ApiOkResponse({ type: CalendarPage })
  @RequirePermission('schedules:read')
  async list(@Ctx() ctx: RequestContext, @Query() q: ListQueryDto): Promise<Page<CalendarResponse>> {
    return mapPage(await this.calendars.list(ctx, q.limit ?? 50, q.cursor), (c) => CalendarResponse.from(c));
  }

  @Get(':id')
  @ApiOperation({ operationId: 'getCalendar', summary: 'Get a calendar' })
  @ApiErrors(ErrorCode.CALENDAR_NOT_FOUND)
  @ApiOkResponse({ type: CalendarResponse })
  @RequirePermission('schedules:read')
  async get(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<CalendarResponse> {
    return CalendarResponse.from(await this.calendars.get(ctx, id));
  }

  @Patch(':id')
  @ApiOperation({ operationId: 'updateCalendar', summary: 'Change a calendar; every schedule excluding it is updated with it' })
  @ApiErrors(
    ErrorCode.CALENDAR_NOT_FOUND,
    ErrorCode.CALENDAR_NAME_TAKEN,
    ErrorCode.SCHEDULE_INVALID_CALENDAR,
    ErrorCode.TEMPORAL_UNAVAILABLE,
  )
  @ApiOkResponse({ type: CalendarResponse })
  @RequirePermission('schedules:write')
  async update(@Ctx() ctx: RequestContext, @Param('id') id: string, @Body() dto: UpdateCalendarDto): Promise<CalendarResponse> {
    const { calendar, schedulesUpdated } = await this.calendars.update(ctx, id, dto);
    return CalendarResponse.from(calendar, schedulesUpdated);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ operationId: 'deleteCalendar', summary: 'Delete a calendar no schedule excludes' })
  @ApiErrors(ErrorCode.CALENDAR_NOT_FOUND, ErrorCode.CALENDAR_IN_USE)
  @ApiNoContentResponse()
  @RequirePermission('schedules:write')
  async remove(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<void> {
    await this.calendars.remove(ctx, id);
  }
}
