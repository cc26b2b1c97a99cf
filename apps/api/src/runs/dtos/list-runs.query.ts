import { ApiPropertyOptional } from '@nestjs/swagger';
import { RUN_STATUSES, RUN_TRIGGERS } from '@task-scheduler/contracts';
import type { RunStatus, RunTrigger } from '@task-scheduler/contracts';
import { IsIn, IsISO8601, IsOptional, IsUUID } from 'class-validator';
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

  @ApiPropertyOptional({ enum: RUN_TRIGGERS })
  @IsOptional()
  @IsIn(RUN_TRIGGERS as unknown as string[])
  trigger?: RunTrigger;

  @ApiPropertyOptional({ description: 'Runs queued at or after this time (ISO 8601).', example: '2026-11-23T00:00:00Z' })
  @IsOptional()
  @IsISO8601({ strict: true })
  from?: string;

  @ApiPropertyOptional({ description: 'Runs queued before this time (ISO 8601).' })
  @IsOptional()
  @IsISO8601({ strict: true })
  to?: string;
}
