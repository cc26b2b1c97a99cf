import { Controller, Get, Headers, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import { ApiAcceptedResponse, ApiHeader, ApiOkResponse, ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { RequirePermission } from '../auth/permissions';
import { Ctx } from '../auth/request-context';
import type { RequestContext } from '../auth/request-context';
import { ListRunsQueryDto } from './dtos/list-runs.query';
import { RunPage, RunResponse } from './dtos/run.response';
import { RunsService } from './runs.service';
import { mapPage } from '../common/page.dto';
import type { Page } from '../common/pagination';

@ApiTags('runs')
@ApiSecurity('api-key')
@Controller('v1')
export class RunsController {
  constructor(private readonly runs: RunsService) {}

  @Post('tasks/:id/runs')
  @HttpCode(202)
  @ApiOperation({ summary: 'Run a task now' })
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'Same key for the same task: the same run, never two.' })
  @ApiAcceptedResponse({ type: RunResponse })
  @RequirePermission('runs:execute')
  async trigger(
    @Ctx() ctx: RequestContext,
    @Param('id') taskId: string,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<RunResponse> {
    const { run, created } = await this.runs.trigger(ctx, taskId, idempotencyKey);
    res.setHeader('Location', `/v1/runs/${run.id}`);
    if (!created) res.setHeader('Idempotent-Replayed', 'true');
    return RunResponse.from(run, this.runs.uiUrl(run));
  }

  @Get('runs')
  @ApiOperation({ summary: 'List runs, newest first' })
  @ApiOkResponse({ type: RunPage })
  @RequirePermission('runs:read')
  async list(@Ctx() ctx: RequestContext, @Query() q: ListRunsQueryDto): Promise<Page<RunResponse>> {
    const page = await this.runs.list(ctx, { limit: q.limit ?? 50, cursor: q.cursor, taskId: q.taskId, status: q.status });
    return mapPage(page, (r) => RunResponse.from(r, this.runs.uiUrl(r)));
  }

  @Get('runs/:id')
  @ApiOperation({ summary: 'Get a run with every attempt' })
  @ApiOkResponse({ type: RunResponse })
  @RequirePermission('runs:read')
  async get(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<RunResponse> {
    const { run, attempts } = await this.runs.get(ctx, id);
    return RunResponse.from(run, this.runs.uiUrl(run), attempts);
  }
}
