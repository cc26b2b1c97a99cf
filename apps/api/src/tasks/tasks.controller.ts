import { Body, Controller, Get, Param, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { RequirePermission } from '../auth/permissions';
import { Ctx } from '../auth/request-context';
import type { RequestContext } from '../auth/request-context';
import { ListQueryDto } from '../common/list-query.dto';
import { CreateTaskDto } from './dtos/create-task.dto';
import { TaskPage, TaskResponse } from './dtos/task.response';
import { TasksService } from './tasks.service';
import { mapPage } from '../common/page.dto';
import type { Page } from '../common/pagination';

@ApiTags('tasks')
@ApiSecurity('api-key')
@Controller('v1/tasks')
export class TasksController {
  constructor(private readonly tasks: TasksService) {}

  @Post()
  @ApiOperation({ summary: 'Create a task' })
  @ApiCreatedResponse({ type: TaskResponse })
  @RequirePermission('tasks:write')
  async create(@Ctx() ctx: RequestContext, @Body() dto: CreateTaskDto): Promise<TaskResponse> {
    return TaskResponse.from(await this.tasks.create(ctx, dto));
  }

  @Get()
  @ApiOperation({ summary: 'List tasks, newest first' })
  @ApiOkResponse({ type: TaskPage })
  @RequirePermission('tasks:read')
  async list(@Ctx() ctx: RequestContext, @Query() q: ListQueryDto): Promise<Page<TaskResponse>> {
    const page = await this.tasks.list(ctx, q.limit ?? 50, q.cursor);
    return mapPage(page, TaskResponse.from);
  }

  @Get(':id')
  @ApiOperation({ summary: 'Get a task' })
  @ApiOkResponse({ type: TaskResponse })
  @RequirePermission('tasks:read')
  async get(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<TaskResponse> {
    return TaskResponse.from(await this.tasks.get(ctx, id));
  }
}
