import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { FAILURE_POLICIES, TRIGGER_RULES } from '@task-scheduler/contracts';
import type { AlertSpec, PipelineDefinition, RunOverrides } from '@task-scheduler/contracts';
import { PIPELINE_VERSION_ACTIONS } from '@task-scheduler/db';
import type { PipelineEntity, PipelineVersionEntity } from '@task-scheduler/db';
import { PageOf } from '../../common/page.dto';
import { DeletedScheduleRef, TaskVersionActorResponse } from '../../tasks/dtos/task-version.response';
import { PipelineParameterDto } from './create-pipeline.dto';

export class PipelineStepResponse {
  @ApiProperty({ example: 'extract' }) key!: string;
  @ApiProperty({ format: 'uuid', description: 'The id of the task the step runs.' }) task!: string;
  @ApiProperty({ description: "The task's name (now; a deleted task keeps its last name)." }) taskName!: string;
  @ApiProperty({ type: Object, description: 'Parameters of the step’s run; strings may hold templates.' }) overrides!: RunOverrides;
  @ApiProperty({ type: [String] }) dependsOn!: string[];
  @ApiProperty({ enum: TRIGGER_RULES }) triggerRule!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) when!: string | null;
  @ApiPropertyOptional({
    description: 'The list, or the `{{ expression }}` giving it; null for a step without forEach.',
    anyOf: [
      { type: 'array', items: {}, nullable: true },
      { type: 'string', nullable: true },
    ],
  })
  forEach!: unknown[] | string | null;
}

export class PipelineResponse {
  @ApiProperty() id!: string;
  @ApiProperty() tenantId!: string;
  @ApiProperty() name!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) description!: string | null;
  @ApiProperty() version!: number;
  @ApiProperty({ type: [PipelineParameterDto] }) parameters!: PipelineParameterDto[];
  @ApiProperty({ type: [PipelineStepResponse] }) steps!: PipelineStepResponse[];
  @ApiProperty() maxParallelism!: number;
  @ApiProperty({ enum: FAILURE_POLICIES }) failurePolicy!: string;
  @ApiPropertyOptional({ type: Object, nullable: true }) alerts!: AlertSpec | null;
  @ApiProperty() createdAt!: string;
  @ApiProperty() updatedAt!: string;

  /** `taskNames`: the names of the tasks the steps run, by id. */
  static from(p: PipelineEntity, taskNames: ReadonlyMap<string, string>): PipelineResponse {
    return {
      id: p.id,
      tenantId: p.tenantId,
      name: p.name,
      description: p.description,
      version: p.version,
      ...definitionResponse(p.definition, taskNames),
      alerts: p.alerts,
      createdAt: p.createdAt.toISOString(),
      updatedAt: p.updatedAt.toISOString(),
    };
  }
}

export function definitionResponse(
  d: PipelineDefinition,
  taskNames: ReadonlyMap<string, string>,
): Pick<PipelineResponse, 'parameters' | 'steps' | 'maxParallelism' | 'failurePolicy'> {
  return {
    parameters: d.parameters,
    steps: d.steps.map((s) => ({
      key: s.key,
      task: s.taskId,
      taskName: taskNames.get(s.taskId) ?? '',
      overrides: s.overrides ?? {},
      dependsOn: s.dependsOn,
      triggerRule: s.triggerRule,
      when: s.when ?? null,
      forEach: s.forEach ?? null,
    })),
    maxParallelism: d.maxParallelism,
    failurePolicy: d.failurePolicy,
  };
}

export const PipelinePage = PageOf(PipelineResponse);

export class PipelineVersionResponse {
  @ApiProperty({ example: 2 }) version!: number;
  @ApiProperty({ enum: [...PIPELINE_VERSION_ACTIONS] }) action!: string;
  @ApiProperty({
    type: [String],
    description: 'Fields that differ from the previous version (every field for version 1).',
    example: ['steps'],
  })
  changedFields!: string[];
  @ApiProperty() name!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) description!: string | null;
  @ApiProperty({ type: Object, description: 'Parameters, steps (tasks by id), maxParallelism and failurePolicy at this version.' })
  definition!: Record<string, unknown>;
  @ApiPropertyOptional({ type: TaskVersionActorResponse, nullable: true, description: 'Who made the change.' })
  actor!: TaskVersionActorResponse | null;
  @ApiPropertyOptional({ nullable: true, type: String }) requestId!: string | null;
  @ApiProperty() changedAt!: string;

  static from(v: PipelineVersionEntity): PipelineVersionResponse {
    return {
      version: v.version,
      action: v.action,
      changedFields: v.changedFields,
      name: v.name,
      description: v.description,
      definition: v.definition as unknown as Record<string, unknown>,
      actor: v.actor === null && v.actorKeyId === null ? null : { apiKeyId: v.actorKeyId, name: v.actor },
      requestId: v.requestId,
      changedAt: v.createdAt.toISOString(),
    };
  }
}

export const PipelineVersionPage = PageOf(PipelineVersionResponse);

export class PipelineDeletedResponse {
  @ApiProperty() id!: string;
  @ApiProperty({ type: [DeletedScheduleRef], description: 'Schedules deleted with the pipeline (cascade=true); empty otherwise.' })
  deletedSchedules!: DeletedScheduleRef[];
}
