import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Req, Res } from '@nestjs/common';
import { ApiAcceptedResponse, ApiHeader, ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import { ApiErrors, ApiResponseHeaders } from '../common/openapi';
import { ErrorCode } from '../common/api-error';
import type { Request, Response } from 'express';
import { RequirePermission } from '../auth/permissions';
import { Ctx } from '../auth/request-context';
import type { RequestContext } from '../auth/request-context';
import { ListQueryDto } from '../common/list-query.dto';
import { mapPage } from '../common/page.dto';
import type { Page } from '../common/pagination';
import { ListRunsQueryDto } from './dtos/list-runs.query';
import { RunPage, RunResponse } from './dtos/run.response';
import { TriggerRunDto } from './dtos/trigger-run.dto';
import { GetRunQueryDto, RunLogsQueryDto, RunLogsResponse } from './dtos/run-logs.dto';
import { RunLogsService } from './run-logs.service';
import { RunsService } from './runs.service';

@ApiTags('runs')
@Controller('v1')
export class RunsController {
  constructor(
    private readonly runs: RunsService,
    private readonly logs: RunLogsService,
  ) {}

  @Post('tasks/:id/runs')
  @HttpCode(202)
  @ApiOperation({ operationId: 'triggerTaskRun', summary: 'Run a task now, optionally with parameter overrides' })
  @ApiErrors(
    ErrorCode.TASK_NOT_FOUND,
    ErrorCode.TASK_DISABLED,
    ErrorCode.IDEMPOTENCY_KEY_INVALID,
    ErrorCode.IDEMPOTENCY_KEY_REUSED,
    ErrorCode.TEMPORAL_UNAVAILABLE,
  )
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description: 'Same key and body for the same task: the same run, never two. Same key, different body: 422 IDEMPOTENCY_KEY_REUSED.',
    schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,255}$', maxLength: 255, example: 'deploy-2026-12-02-001' },
  })
  @ApiAcceptedResponse({ type: RunResponse, description: 'The run started (or, for a known Idempotency-Key, the run started then).' })
  @ApiResponseHeaders('Location', 'IdempotentReplayed')
  @RequirePermission('runs:execute')
  async trigger(
    @Ctx() ctx: RequestContext,
    @Param('id') taskId: string,
    @Body() body: TriggerRunDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<RunResponse> {
    const { run, created } = await this.runs.trigger(ctx, taskId, { idempotencyKey, overrides: { ...body } });
    res.setHeader('Location', `/v1/runs/${run.id}`);
    if (!created) res.setHeader('Idempotent-Replayed', 'true');
    return RunResponse.from(run, this.runs.uiUrl(run));
  }

  @Get('runs')
  @ApiOperation({ operationId: 'listRuns', summary: 'List runs, newest first (filters: task, status, trigger, time range)' })
  @ApiOkResponse({ type: RunPage })
  @RequirePermission('runs:read')
  async list(@Ctx() ctx: RequestContext, @Query() q: ListRunsQueryDto): Promise<Page<RunResponse>> {
    const page = await this.runs.list(ctx, { ...q, limit: q.limit ?? 50 });
    return mapPage(page, (r) => RunResponse.from(r, this.runs.uiUrl(r)));
  }

  @Get('runs/:id')
  @ApiOperation({ operationId: 'getRun', summary: 'Get a run with its shards and every attempt' })
  @ApiErrors(ErrorCode.RUN_NOT_FOUND)
  @ApiOkResponse({ type: RunResponse })
  @RequirePermission('runs:read')
  async get(@Ctx() ctx: RequestContext, @Param('id') id: string, @Query() q: GetRunQueryDto): Promise<RunResponse> {
    const { run, ...detail } = await this.runs.get(ctx, id);
    const out = RunResponse.from(run, this.runs.uiUrl(run), detail);
    return q.output === 'omit' ? RunResponse.withoutOutput(out) : out;
  }

  @Get('runs/:id/logs')
  @ApiOperation({
    operationId: 'getRunLogs',
    summary: "An attempt's output as printed: a page, or with follow=true a live Server-Sent Events stream until the attempt ends",
    description:
      'Output is stored while the attempt runs (every OUTPUT_FLUSH_MS), so it can be read before the attempt ends and is kept if ' +
      'the worker dies. With `follow=true` the answer is `text/event-stream`: `chunk` events (`id` = <attempt>.<seq>, data ' +
      '`{"seq","stream","text"}`) in print order, then one `end` event (data `{"attempt","attemptStatus","stdout","stderr"}`, the ' +
      'sizes), then the stream closes. Reconnect with `Last-Event-ID` to go on after the last chunk seen (204 once the attempt ' +
      'ended and everything was seen: an EventSource stops there).',
  })
  @ApiErrors(ErrorCode.RUN_NOT_FOUND, ErrorCode.ATTEMPT_NOT_FOUND, ErrorCode.TOO_MANY_FOLLOWERS)
  @ApiProduces('application/json', 'text/event-stream')
  @ApiOkResponse({ type: RunLogsResponse, description: 'A page of output (follow=false); with follow=true, an event stream.' })
  @RequirePermission('runs:read')
  async getLogs(
    @Ctx() ctx: RequestContext,
    @Param('id') id: string,
    @Query() q: RunLogsQueryDto,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    // The response is written here (an event stream has no return value); errors still reach the error filter.
    if (q.follow === 'true') await this.logs.follow(ctx, id, q, req, res);
    else res.json(await this.logs.page(ctx, id, q));
  }

  @Post('runs/:id/cancel')
  @HttpCode(202)
  @ApiOperation({
    operationId: 'cancelRun',
    summary: 'Cancel a queued or running run; its processes are stopped within two heartbeat intervals',
  })
  @ApiErrors(ErrorCode.RUN_NOT_FOUND, ErrorCode.RUN_ALREADY_FINISHED, ErrorCode.TEMPORAL_UNAVAILABLE)
  @ApiAcceptedResponse({ type: RunResponse })
  @RequirePermission('runs:execute')
  async cancel(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<RunResponse> {
    const run = await this.runs.cancel(ctx, id);
    return RunResponse.from(run, this.runs.uiUrl(run));
  }

  @Post('runs/:id/retry')
  @HttpCode(202)
  @ApiOperation({ operationId: 'retryRun', summary: 'Start a new run with the same parameters, linked to this finished one' })
  @ApiErrors(
    ErrorCode.RUN_NOT_FOUND,
    ErrorCode.RUN_NOT_FINISHED,
    ErrorCode.RUN_ALREADY_REDRIVEN,
    ErrorCode.TASK_DISABLED,
    ErrorCode.TEMPORAL_UNAVAILABLE,
  )
  @ApiAcceptedResponse({ type: RunResponse, description: 'The new run.' })
  @ApiResponseHeaders('Location')
  @RequirePermission('runs:execute')
  async retry(@Ctx() ctx: RequestContext, @Param('id') id: string, @Res({ passthrough: true }) res: Response): Promise<RunResponse> {
    const run = await this.runs.retry(ctx, id);
    res.setHeader('Location', `/v1/runs/${run.id}`);
    return RunResponse.from(run, this.runs.uiUrl(run));
  }

  @Get('dead-letters')
  @ApiOperation({
    operationId: 'listDeadLetters',
    summary: 'Runs that failed or timed out with no attempt left and were not re-driven, newest first',
  })
  @ApiOkResponse({ type: RunPage })
  @RequirePermission('runs:read')
  async deadLetters(@Ctx() ctx: RequestContext, @Query() q: ListQueryDto): Promise<Page<RunResponse>> {
    const page = await this.runs.list(ctx, { limit: q.limit ?? 50, cursor: q.cursor, deadLetter: true });
    return mapPage(page, (r) => RunResponse.from(r, this.runs.uiUrl(r)));
  }

  @Post('dead-letters/:id/redrive')
  @HttpCode(202)
  @ApiOperation({
    operationId: 'redriveDeadLetter',
    summary: 'Re-drive a dead letter: a new run linked to it; the dead letter leaves the list',
  })
  @ApiErrors(
    ErrorCode.RUN_NOT_FOUND,
    ErrorCode.NOT_A_DEAD_LETTER,
    ErrorCode.RUN_ALREADY_REDRIVEN,
    ErrorCode.TASK_DISABLED,
    ErrorCode.TEMPORAL_UNAVAILABLE,
  )
  @ApiAcceptedResponse({ type: RunResponse, description: 'The new run.' })
  @ApiResponseHeaders('Location')
  @RequirePermission('runs:execute')
  async redrive(@Ctx() ctx: RequestContext, @Param('id') id: string, @Res({ passthrough: true }) res: Response): Promise<RunResponse> {
    const run = await this.runs.retry(ctx, id, { deadLetterOnly: true });
    res.setHeader('Location', `/v1/runs/${run.id}`);
    return RunResponse.from(run, this.runs.uiUrl(run));
  }
}
