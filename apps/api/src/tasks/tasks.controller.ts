import {
  Body,
  Controller,
  applyDecorators,
  Delete,
  Get,
  Headers,
  HttpCode,
  Param,
  Patch,
  Post,
  Query,
  UseInterceptors,
} from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { ApiErrors, ApiIfMatch, ApiResponseHeaders } from '../common/openapi';
import { ErrorCode } from '../common/api-error';
import { RequirePermission } from '../auth/permissions';
import { Ctx } from '../auth/request-context';
import type { RequestContext } from '../auth/request-context';
import { ListQueryDto } from '../common/list-query.dto';
import { CreateTaskDto } from './dtos/create-task.dto';
import { TaskDeletedResponse, TaskVersionPage, TaskVersionResponse } from './dtos/task-version.response';
import { UpdateTaskDto } from './dtos/update-task.dto';
import { DeleteTaskQueryDto } from './dtos/delete-task.query';
import { VersionEtagInterceptor } from '../common/versioning';
import { TaskPage, TaskResponse } from './dtos/task.response';
import { TasksService } from './tasks.service';
import { mapPage } from '../common/page.dto';
import type { Page } from '../common/pagination';

/** Disable and enable: the same contract (If-Match, ETag, the task back), one decorator for both routes. */
const SwitchesTask = (): MethodDecorator =>
  applyDecorators(
    ApiIfMatch(),
    ApiErrors(ErrorCode.TASK_NOT_FOUND, ErrorCode.TASK_VERSION_MISMATCH, ErrorCode.TEMPORAL_UNAVAILABLE),
    ApiResponseHeaders('ETag'),
    ApiOkResponse({ type: TaskResponse }),
    RequirePermission('tasks:write'),
  );

@ApiTags('tasks')
@Controller('v1/tasks')
@UseInterceptors(VersionEtagInterceptor)
export class TasksController {
  constructor(private readonly tasks: TasksService) {}

  @Post()
  @ApiOperation({ operationId: 'createTask', summary: 'Create a task' })
  @ApiErrors(
    ErrorCode.TASK_NAME_TAKEN,
    ErrorCode.TASK_EGRESS_FORBIDDEN,
    ErrorCode.TASK_LIMIT_ABOVE_TENANT_CAP,
    ErrorCode.TENANT_QUOTA_EXCEEDED,
    ErrorCode.SECRETS_NOT_CONFIGURED,
    ErrorCode.URL_ADDRESS_REFUSED,
  )
  @ApiResponseHeaders('ETag')
  @ApiCreatedResponse({ type: TaskResponse })
  @RequirePermission('tasks:write')
  async create(@Ctx() ctx: RequestContext, @Body() dto: CreateTaskDto): Promise<TaskResponse> {
    return TaskResponse.from(await this.tasks.create(ctx, dto));
  }

  @Get()
  @ApiOperation({ operationId: 'listTasks', summary: 'List tasks, newest first' })
  @ApiOkResponse({ type: TaskPage })
  @RequirePermission('tasks:read')
  async list(@Ctx() ctx: RequestContext, @Query() q: ListQueryDto): Promise<Page<TaskResponse>> {
    const page = await this.tasks.list(ctx, q.limit ?? 50, q.cursor);
    return mapPage(page, TaskResponse.from);
  }

  @Get(':id')
  @ApiOperation({ operationId: 'getTask', summary: 'Get a task' })
  @ApiErrors(ErrorCode.TASK_NOT_FOUND)
  @ApiResponseHeaders('ETag')
  @ApiOkResponse({ type: TaskResponse })
  @RequirePermission('tasks:read')
  async get(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<TaskResponse> {
    return TaskResponse.from(await this.tasks.get(ctx, id));
  }

  @Patch(':id')
  @ApiOperation({
    operationId: 'updateTask',
    summary: 'Change a task (fields given replace, retry merged); an effective change is a new version',
  })
  @ApiIfMatch()
  @ApiErrors(
    ErrorCode.TASK_NOT_FOUND,
    ErrorCode.TASK_VERSION_MISMATCH,
    ErrorCode.TASK_NAME_TAKEN,
    ErrorCode.TASK_EGRESS_FORBIDDEN,
    ErrorCode.TASK_LIMIT_ABOVE_TENANT_CAP,
    ErrorCode.SECRETS_NOT_CONFIGURED,
    ErrorCode.URL_ADDRESS_REFUSED,
    ErrorCode.TEMPORAL_UNAVAILABLE,
  )
  @ApiResponseHeaders('ETag')
  @ApiOkResponse({ type: TaskResponse })
  @RequirePermission('tasks:write')
  async update(
    @Ctx() ctx: RequestContext,
    @Param('id') id: string,
    @Body() dto: UpdateTaskDto,
    @Headers('if-match') ifMatch: string | undefined,
  ): Promise<TaskResponse> {
    return TaskResponse.from(await this.tasks.update(ctx, id, dto, ifMatch));
  }

  @Get(':id/versions')
  @ApiOperation({ operationId: 'listTaskVersions', summary: "A task's versions, newest first: who changed which fields, when" })
  @ApiErrors(ErrorCode.TASK_NOT_FOUND)
  @ApiOkResponse({ type: TaskVersionPage })
  @RequirePermission('tasks:read')
  async versions(@Ctx() ctx: RequestContext, @Param('id') id: string, @Query() q: ListQueryDto): Promise<Page<TaskVersionResponse>> {
    return mapPage(await this.tasks.versions(ctx, id, q.limit ?? 50, q.cursor), TaskVersionResponse.from);
  }

  @Post(':id/disable')
  @HttpCode(200)
  @ApiOperation({
    operationId: 'disableTask',
    summary: 'Disable a task: runs refused, its schedules held paused (fires reported as task_disabled)',
  })
  @SwitchesTask()
  async disable(
    @Ctx() ctx: RequestContext,
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
  ): Promise<TaskResponse> {
    return TaskResponse.from(await this.tasks.setEnabled(ctx, id, false, ifMatch));
  }

  @Post(':id/enable')
  @HttpCode(200)
  @ApiOperation({ operationId: 'enableTask', summary: 'Enable a disabled task; its schedules fire again from their next time' })
  @SwitchesTask()
  async enable(
    @Ctx() ctx: RequestContext,
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
  ): Promise<TaskResponse> {
    return TaskResponse.from(await this.tasks.setEnabled(ctx, id, true, ifMatch));
  }

  @Delete(':id')
  @ApiOperation({
    operationId: 'deleteTask',
    summary: 'Delete a task (409 TASK_IN_USE while schedules use it, unless cascade=true deletes them too); its runs stay',
  })
  @ApiQuery({ name: 'cascade', required: false, type: Boolean, description: 'Also delete the schedules that use the task.' })
  @ApiIfMatch()
  @ApiErrors(ErrorCode.TASK_NOT_FOUND, ErrorCode.TASK_VERSION_MISMATCH, ErrorCode.TASK_IN_USE, ErrorCode.TEMPORAL_UNAVAILABLE)
  @ApiOkResponse({ type: TaskDeletedResponse })
  @RequirePermission('tasks:write')
  async remove(
    @Ctx() ctx: RequestContext,
    @Param('id') id: string,
    @Query() q: DeleteTaskQueryDto,
    @Headers('if-match') ifMatch: string | undefined,
  ): Promise<TaskDeletedResponse> {
    return this.tasks.remove(ctx, id, { cascade: q.cascade === 'true', ifMatch });
  }
}
