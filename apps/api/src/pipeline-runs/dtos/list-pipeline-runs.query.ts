import { ApiPropertyOptional } from '@nestjs/swagger';
import { PIPELINE_RUN_STATUSES, PIPELINE_RUN_TRIGGERS } from '@task-scheduler/contracts';
import type { PipelineRunStatus, PipelineRunTrigger } from '@task-scheduler/contracts';
import { IsIn, IsUUID } from 'class-validator';
import { ListQueryDto } from '../../common/list-query.dto';
import { Optional } from '../../common/validation';

export class ListPipelineRunsQueryDto extends ListQueryDto {
  @ApiPropertyOptional()
  @Optional()
  @IsUUID()
  pipelineId?: string;

  @ApiPropertyOptional({ enum: PIPELINE_RUN_STATUSES })
  @Optional()
  @IsIn(PIPELINE_RUN_STATUSES as unknown as string[])
  status?: PipelineRunStatus;

  @ApiPropertyOptional({ enum: PIPELINE_RUN_TRIGGERS })
  @Optional()
  @IsIn(PIPELINE_RUN_TRIGGERS as unknown as string[])
  trigger?: PipelineRunTrigger;
}
