import { ApiPropertyOptional } from '@nestjs/swagger';
import { PIPELINE_LIMITS } from '@task-scheduler/contracts';
import { IsBoundedJsonObject, Optional } from '../../common/validation';

/** A run of a pipeline: its parameters (the pipeline's defaults fill in what is not given). */
export class StartPipelineRunDto {
  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description: 'Values of the pipeline’s parameters, by name; read in expressions as `params.<name>`.',
    example: { date: '2026-12-01' },
  })
  @Optional()
  @IsBoundedJsonObject({ maxDepth: 16, maxBytes: PIPELINE_LIMITS.maxParameterBytes })
  params?: Record<string, unknown>;
}
