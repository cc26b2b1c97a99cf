import { Body, Controller, Delete, Get, Headers, Param, Patch, Post, Query, UseInterceptors } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { RequirePermission } from '../auth/permissions';
import { Ctx } from '../auth/request-context';
import type { RequestContext } from '../auth/request-context';
import { ErrorCode } from '../common/api-error';
import { ListQueryDto } from '../common/list-query.dto';
import { ApiErrors, ApiIfMatch, ApiResponseHeaders } from '../common/openapi';
import { mapPage } from '../common/page.dto';
import type { Page } from '../common/pagination';
import { VersionEtagInterceptor } from '../common/versioning';
import { CreatePipelineDto } from './dtos/create-pipeline.dto';
import { DeletePipelineQueryDto } from './dtos/delete-pipeline.query';
import {
  PipelineDeletedResponse,
  PipelinePage,
  PipelineResponse,
  PipelineVersionPage,
  PipelineVersionResponse,
} from './dtos/pipeline.response';
import { UpdatePipelineDto } from './dtos/update-pipeline.dto';
import { PipelinesService } from './pipelines.service';

@ApiTags('pipelines')
@Controller('v1/pipelines')
@UseInterceptors(VersionEtagInterceptor)
export class PipelinesController {
  constructor(private readonly pipelines: PipelinesService) {}

  private async response(ctx: RequestContext, p: Parameters<typeof PipelineResponse.from>[0]): Promise<PipelineResponse> {
    return PipelineResponse.from(p, await this.pipelines.taskNames(ctx, [p]));
  }

  @Post()
  @ApiOperation({
    operationId: 'createPipeline',
    summary: 'Create a pipeline: steps (tasks) with dependencies, trigger rules, conditions and fan-out',
  })
  @ApiErrors(ErrorCode.PIPELINE_INVALID, ErrorCode.PIPELINE_NAME_TAKEN)
  @ApiResponseHeaders('ETag')
  @ApiCreatedResponse({ type: PipelineResponse })
  @RequirePermission('pipelines:write')
  async create(@Ctx() ctx: RequestContext, @Body() dto: CreatePipelineDto): Promise<PipelineResponse> {
    return this.response(ctx, await this.pipelines.create(ctx, dto));
  }

  @Get()
  @ApiOperation({ operationId: 'listPipelines', summary: 'List pipelines, newest first' })
  @ApiOkResponse({ type: PipelinePage })
  @RequirePermission('pipelines:read')
  async list(@Ctx() ctx: RequestContext, @Query() q: ListQueryDto): Promise<Page<PipelineResponse>> {
    const page = await this.pipelines.list(ctx, q.limit ?? 50, q.cursor);
    const names = await this.pipelines.taskNames(ctx, page.items);
    return mapPage(page, (p) => PipelineResponse.from(p, names));
  }

  @Get(':id')
  @ApiOperation({ operationId: 'getPipeline', summary: 'Get a pipeline' })
  @ApiErrors(ErrorCode.PIPELINE_NOT_FOUND)
  @ApiResponseHeaders('ETag')
  @ApiOkResponse({ type: PipelineResponse })
  @RequirePermission('pipelines:read')
  async get(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<PipelineResponse> {
    return this.response(ctx, await this.pipelines.get(ctx, id));
  }

  @Patch(':id')
  @ApiOperation({
    operationId: 'updatePipeline',
    summary: 'Change a pipeline (fields given replace the stored ones); an effective change is a new version',
  })
  @ApiIfMatch()
  @ApiErrors(ErrorCode.PIPELINE_NOT_FOUND, ErrorCode.PIPELINE_VERSION_MISMATCH, ErrorCode.PIPELINE_INVALID, ErrorCode.PIPELINE_NAME_TAKEN)
  @ApiResponseHeaders('ETag')
  @ApiOkResponse({ type: PipelineResponse })
  @RequirePermission('pipelines:write')
  async update(
    @Ctx() ctx: RequestContext,
    @Param('id') id: string,
    @Body() dto: UpdatePipelineDto,
    @Headers('if-match') ifMatch: string | undefined,
  ): Promise<PipelineResponse> {
    return this.response(ctx, await this.pipelines.update(ctx, id, dto, ifMatch));
  }

  @Get(':id/versions')
  @ApiOperation({ operationId: 'listPipelineVersions', summary: "A pipeline's versions, newest first: who changed which fields, when" })
  @ApiErrors(ErrorCode.PIPELINE_NOT_FOUND)
  @ApiOkResponse({ type: PipelineVersionPage })
  @RequirePermission('pipelines:read')
  async versions(@Ctx() ctx: RequestContext, @Param('id') id: string, @Query() q: ListQueryDto): Promise<Page<PipelineVersionResponse>> {
    return mapPage(await this.pipelines.versions(ctx, id, q.limit ?? 50, q.cursor), PipelineVersionResponse.from);
  }

  @Delete(':id')
  @ApiOperation({
    operationId: 'deletePipeline',
    summary: 'Delete a pipeline (409 PIPELINE_IN_USE while schedules start it, unless cascade=true deletes them too); runs in flight go on',
  })
  @ApiQuery({ name: 'cascade', required: false, type: Boolean, description: 'Also delete the schedules that start the pipeline.' })
  @ApiIfMatch()
  @ApiErrors(ErrorCode.PIPELINE_NOT_FOUND, ErrorCode.PIPELINE_VERSION_MISMATCH, ErrorCode.PIPELINE_IN_USE, ErrorCode.TEMPORAL_UNAVAILABLE)
  @ApiOkResponse({ type: PipelineDeletedResponse })
  @RequirePermission('pipelines:write')
  async remove(
    @Ctx() ctx: RequestContext,
    @Param('id') id: string,
    @Query() q: DeletePipelineQueryDto,
    @Headers('if-match') ifMatch: string | undefined,
  ): Promise<PipelineDeletedResponse> {
    return this.pipelines.remove(ctx, id, { cascade: q.cascade === 'true', ifMatch });
  }
}
