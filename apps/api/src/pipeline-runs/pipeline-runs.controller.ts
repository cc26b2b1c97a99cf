import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import { ApiAcceptedResponse, ApiHeader, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { RequirePermission } from '../auth/permissions';
import { Ctx } from '../auth/request-context';
import type { RequestContext } from '../auth/request-context';
import { ErrorCode } from '../common/api-error';
import { ApiErrors, ApiResponseHeaders } from '../common/openapi';
import type { Page } from '../common/pagination';
import { ListPipelineRunsQueryDto } from './dtos/list-pipeline-runs.query';
import { PipelineRunPage, PipelineRunResponse } from './dtos/pipeline-run.response';
import { StartPipelineRunDto } from './dtos/start-pipeline-run.dto';
import { PipelineRunsService } from './pipeline-runs.service';

@ApiTags('pipeline-runs')
@Controller('v1')
export class PipelineRunsController {
  constructor(private readonly runs: PipelineRunsService) {}

  private async response(
    ctx: RequestContext,
    run: Parameters<PipelineRunsService['uiUrl']>[0],
    withSteps = false,
  ): Promise<PipelineRunResponse> {
    const names = await this.runs.pipelineNames(ctx, [run]);
    const steps = withSteps ? await this.runs.steps(ctx, run) : undefined;
    return PipelineRunResponse.from(run, names.get(run.pipelineId) ?? '', this.runs.uiUrl(run), steps);
  }

  @Post('pipelines/:id/runs')
  @HttpCode(202)
  @ApiOperation({ operationId: 'startPipelineRun', summary: 'Run a pipeline now (its current version) with parameters' })
  @ApiErrors(
    ErrorCode.PIPELINE_NOT_FOUND,
    ErrorCode.PIPELINE_PARAMS_INVALID,
    ErrorCode.IDEMPOTENCY_KEY_INVALID,
    ErrorCode.IDEMPOTENCY_KEY_REUSED,
    ErrorCode.TEMPORAL_UNAVAILABLE,
  )
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description: 'Same key and body for the same pipeline: the same run, never two. Same key, different body: 422 IDEMPOTENCY_KEY_REUSED.',
    schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,255}$', maxLength: 255, example: 'etl-2026-12-02' },
  })
  @ApiAcceptedResponse({
    type: PipelineRunResponse,
    description: 'The run started (or, for a known Idempotency-Key, the run started then).',
  })
  @ApiResponseHeaders('Location', 'IdempotentReplayed')
  @RequirePermission('runs:execute')
  async start(
    @Ctx() ctx: RequestContext,
    @Param('id') pipelineId: string,
    @Body() body: StartPipelineRunDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<PipelineRunResponse> {
    const { run, created } = await this.runs.start(ctx, pipelineId, { params: body.params, idempotencyKey });
    res.setHeader('Location', `/v1/pipeline-runs/${run.id}`);
    if (!created) res.setHeader('Idempotent-Replayed', 'true');
    return this.response(ctx, run);
  }

  @Get('pipeline-runs')
  @ApiOperation({ operationId: 'listPipelineRuns', summary: 'List pipeline runs, newest first (filters: pipeline, status, trigger)' })
  @ApiOkResponse({ type: PipelineRunPage })
  @RequirePermission('runs:read')
  async list(@Ctx() ctx: RequestContext, @Query() q: ListPipelineRunsQueryDto): Promise<Page<PipelineRunResponse>> {
    const page = await this.runs.list(ctx, { ...q, limit: q.limit ?? 50 });
    const names = await this.runs.pipelineNames(ctx, page.items);
    return {
      items: page.items.map((r) => PipelineRunResponse.from(r, names.get(r.pipelineId) ?? '', this.runs.uiUrl(r))),
      nextCursor: page.nextCursor,
    };
  }

  @Get('pipeline-runs/:id')
  @ApiOperation({ operationId: 'getPipelineRun', summary: 'Get a pipeline run with every step: status, reason, outputs, runs, timing' })
  @ApiErrors(ErrorCode.PIPELINE_RUN_NOT_FOUND)
  @ApiOkResponse({ type: PipelineRunResponse })
  @RequirePermission('runs:read')
  async get(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<PipelineRunResponse> {
    return this.response(ctx, await this.runs.getRun(ctx, id), true);
  }

  @Post('pipeline-runs/:id/cancel')
  @HttpCode(202)
  @ApiOperation({ operationId: 'cancelPipelineRun', summary: 'Cancel a queued or running pipeline run; its running steps are cancelled' })
  @ApiErrors(ErrorCode.PIPELINE_RUN_NOT_FOUND, ErrorCode.PIPELINE_RUN_ALREADY_FINISHED, ErrorCode.TEMPORAL_UNAVAILABLE)
  @ApiAcceptedResponse({ type: PipelineRunResponse })
  @RequirePermission('runs:execute')
  async cancel(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<PipelineRunResponse> {
    return this.response(ctx, await this.runs.cancel(ctx, id));
  }

  @Post('pipeline-runs/:id/retry')
  @HttpCode(202)
  @ApiOperation({
    operationId: 'retryPipelineRun',
    summary: 'Re-run the failed, cancelled and skipped steps of a finished run (and what depends on them), reusing the rest',
  })
  @ApiErrors(
    ErrorCode.PIPELINE_RUN_NOT_FOUND,
    ErrorCode.PIPELINE_NOT_FOUND,
    ErrorCode.PIPELINE_RUN_NOT_FINISHED,
    ErrorCode.PIPELINE_RUN_NOTHING_TO_RETRY,
    ErrorCode.TEMPORAL_UNAVAILABLE,
  )
  @ApiAcceptedResponse({ type: PipelineRunResponse, description: 'The new pipeline run.' })
  @ApiResponseHeaders('Location')
  @RequirePermission('runs:execute')
  async retry(
    @Ctx() ctx: RequestContext,
    @Param('id') id: string,
    @Res({ passthrough: true }) res: Response,
  ): Promise<PipelineRunResponse> {
    const run = await this.runs.retry(ctx, id);
    res.setHeader('Location', `/v1/pipeline-runs/${run.id}`);
    return this.response(ctx, run);
  }
}
