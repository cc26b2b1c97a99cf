import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiErrors } from '../common/openapi';
import { ErrorCode } from '../common/api-error';
import { RequirePermission } from '../auth/permissions';
import { WorkersResponse } from './dtos/worker.response';
import { WorkersService } from './workers.service';

@ApiTags('workers')
@Controller('v1')
export class WorkersController {
  constructor(private readonly workers: WorkersService) {}

  @Get('workers')
  @ApiOperation({
    operationId: 'listWorkers',
    summary: "List the workers polling each of this deployment's task queues, as Temporal reports them",
  })
  @ApiErrors(ErrorCode.TEMPORAL_UNAVAILABLE)
  @ApiOkResponse({ type: WorkersResponse })
  @RequirePermission('workers:read')
  list(): Promise<WorkersResponse> {
    return this.workers.list();
  }
}
