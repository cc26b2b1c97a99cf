import { ApiPropertyOptional } from '@nestjs/swagger';
import { RUN_STATUSES, RUN_TRIGGERS } from '@task-scheduler/contracts';
import type { RunStatus, RunTrigger } from '@task-scheduler/contracts';
import { IsIn, IsISO8601, IsUUID } from 'class-validator';
import { Optional } from '../../common/validation';
import { ListQueryDto } from '../../common/list-query.dto';

export class ListRunsQueryDto extends ListQueryDto {
  @ApiPropertyOptional()
  @Optional()
  @IsUUID()
  taskId?: string;

  @ApiPropertyOptional({ enum: RUN_STATUSES })
  @Optional()
  @IsIn(RUN_STATUSES as unknown as string[])
  status?: RunStatus;

  @ApiPropertyOptional({ enum: RUN_TRIGGERS })
  @Optional()
  @IsIn(RUN_TRIGGERS as unknown as string[])
  trigger?: RunTrigger;

  @ApiPropertyOptional({ description: 'Runs queued at or after this time (ISO 8601).', example: '2026-11-23T00:00:00Z' })
  @Optional()
  @IsISO8601({ strict: true })
  from?: string;

  @ApiPropertyOptional({ description: 'Runs queued before this time (ISO 8601).' })
  @Optional()
  @IsISO8601({ strict: true })
  to?: string;
}
