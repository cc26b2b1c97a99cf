import { ApiPropertyOptional } from '@nestjs/swagger';
import { RUN_STATUSES } from '@task-scheduler/contracts';
import type { RunStatus } from '@task-scheduler/contracts';
import { IsIn, IsOptional, IsUUID } from 'class-validator';
import { ListQueryDto } from '../../common/list-query.dto';

export class ListRunsQueryDto extends ListQueryDto {
  @ApiPropertyOptional()
  @IsOptional()
  @IsUUID()
  taskId?: string;

  @ApiPropertyOptional({ enum: RUN_STATUSES })
  @IsOptional()
  @IsIn(RUN_STATUSES as unknown as string[])
  status?: RunStatus;
}
