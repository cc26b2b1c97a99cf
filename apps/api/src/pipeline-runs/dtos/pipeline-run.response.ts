import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  PIPELINE_RUN_STATUSES,
  PIPELINE_RUN_TRIGGERS,
  RUN_STATUSES,
  STEP_REASONS,
  STEP_STATUSES,
  TRIGGER_RULES,
} from '@task-scheduler/contracts';
import type { PipelineRunEntity } from '@task-scheduler/db';
import { PageOf, isoOrNull } from '../../common/page.dto';

export class PipelineRunItemResponse {
  @ApiProperty() itemIndex!: number;
  @ApiProperty() runId!: string;
  @ApiProperty({ enum: RUN_STATUSES }) status!: string;
  @ApiProperty() attempts!: number;
  @ApiPropertyOptional({ nullable: true, type: String }) startedAt!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) finishedAt!: string | null;
}

export class PipelineRunStepResponse {
  @ApiProperty({ example: 'extract' }) key!: string;
  @ApiProperty() taskId!: string;
  @ApiProperty({ enum: TRIGGER_RULES }) triggerRule!: string;
  @ApiProperty({ type: [String] }) dependsOn!: string[];
  @ApiProperty({ enum: STEP_STATUSES }) status!: string;
  @ApiPropertyOptional({ nullable: true, enum: STEP_REASONS, description: 'Why the step ended so (docs/pipelines.md).' })
  reason!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) error!: string | null;
  @ApiPropertyOptional({ nullable: true, type: Number, description: 'Items of a forEach step.' }) itemCount!: number | null;
  @ApiPropertyOptional({
    description: "The step's outputs: an object, or for a forEach step the list of its items' outputs in item order; null: none yet.",
    anyOf: [
      { type: 'object', additionalProperties: true, nullable: true },
      { type: 'array', items: {}, nullable: true },
    ],
  })
  outputs!: unknown;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'The run of the step (null for a forEach step: see items).' })
  runId!: string | null;
  @ApiProperty({ description: "Attempts of the step's runs, summed." }) attempts!: number;
  @ApiPropertyOptional({ nullable: true, type: String }) startedAt!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) finishedAt!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'The pipeline run a retry took this succeeded step from.' })
  reusedFromPipelineRunId!: string | null;
  @ApiPropertyOptional({ nullable: true, type: [PipelineRunItemResponse], description: 'The runs of a forEach step, by item.' })
  items!: PipelineRunItemResponse[] | null;
}

export class PipelineRunResponse {
  @ApiProperty() id!: string;
  @ApiProperty() tenantId!: string;
  @ApiProperty() pipelineId!: string;
  @ApiProperty() pipelineName!: string;
  @ApiProperty({ description: 'The pipeline version the run runs (a retry: the version of the run it retries).' })
  pipelineVersion!: number;
  @ApiProperty({ enum: PIPELINE_RUN_STATUSES }) status!: string;
  @ApiProperty({ enum: PIPELINE_RUN_TRIGGERS }) trigger!: string;
  @ApiProperty({ type: 'object', additionalProperties: true, description: 'The parameters, defaults applied.' })
  params!: Record<string, unknown>;
  @ApiPropertyOptional({ nullable: true, type: String }) error!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'The pipeline run this one retries.' })
  retryOfPipelineRunId!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) scheduleId!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) scheduledAt!: string | null;
  @ApiProperty() workflowId!: string;
  @ApiProperty({ description: 'Deep link to the pipeline workflow in the Temporal Web UI.' }) temporalUiUrl!: string;
  @ApiProperty() queuedAt!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) startedAt!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) finishedAt!: string | null;
  @ApiProperty() createdAt!: string;
  @ApiProperty() updatedAt!: string;
  @ApiPropertyOptional({ type: [PipelineRunStepResponse], description: 'Every step of the run (single-run views only).' })
  steps?: PipelineRunStepResponse[];

  static from(r: PipelineRunEntity, pipelineName: string, uiUrl: string, steps?: PipelineRunStepResponse[]): PipelineRunResponse {
    return {
      id: r.id,
      tenantId: r.tenantId,
      pipelineId: r.pipelineId,
      pipelineName,
      pipelineVersion: r.pipelineVersion,
      status: r.status,
      trigger: r.trigger,
      params: r.params,
      error: r.error,
      retryOfPipelineRunId: r.retryOfPipelineRunId,
      scheduleId: r.scheduleId,
      scheduledAt: isoOrNull(r.scheduledAt),
      workflowId: r.workflowId,
      temporalUiUrl: uiUrl,
      queuedAt: r.queuedAt.toISOString(),
      startedAt: isoOrNull(r.startedAt),
      finishedAt: isoOrNull(r.finishedAt),
      createdAt: r.createdAt.toISOString(),
      updatedAt: r.updatedAt.toISOString(),
      ...(steps ? { steps } : {}),
    };
  }
}

export const PipelineRunPage = PageOf(PipelineRunResponse);
