import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { RequirePermission } from '../auth/permissions';
import { WorkersResponse } from './dtos/worker.response';
import { WorkersService } from './workers.service';

@ApiTags('workers')
@ApiSecurity('api-key')
@Controller('v1')
export class WorkersController {
  constructor(private readonly workers: WorkersService) {}

  @Get('workers')
  @ApiOperation({ summary: "List the workers polling each of this deployment's task queues, as Temporal reports them" })
  @ApiOkResponse({ type: WorkersResponse })
  @RequirePermission('workers:read')
  list(): Promise<WorkersResponse> {
    return this.workers.list();
  }
}
