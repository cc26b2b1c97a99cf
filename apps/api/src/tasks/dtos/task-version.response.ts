import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { TASK_VERSION_ACTIONS } from '@task-scheduler/db';
import type { TaskVersionAction, TaskVersionEntity } from '@task-scheduler/db';
import { PageOf } from '../../common/page.dto';

export class TaskVersionActorResponse {
  @ApiPropertyOptional({ nullable: true, type: String, description: 'The API key that made the change (null for a token caller).' })
  apiKeyId!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: '`key:<prefix>` or `jwt:<subject>`, as in the audit log.' })
  name!: string | null;
}

export class TaskVersionResponse {
  @ApiProperty({ example: 2 }) version!: number;
  @ApiProperty({ enum: [...TASK_VERSION_ACTIONS] }) action!: TaskVersionAction;
  @ApiProperty({
    type: [String],
    description: 'Fields that differ from the previous version (every field for version 1).',
    example: ['shell.script'],
  })
  changedFields!: string[];
  @ApiProperty({ type: Object, description: 'The whole definition at this version, as GET shows it (secret values as ***).' })
  definition!: Record<string, unknown>;
  @ApiPropertyOptional({
    type: TaskVersionActorResponse,
    nullable: true,
    description: 'Who made the change; null for versions recorded by the migration.',
  })
  actor!: TaskVersionActorResponse | null;
  @ApiPropertyOptional({ nullable: true, type: String }) requestId!: string | null;
  @ApiProperty() changedAt!: string;

  static from(v: TaskVersionEntity): TaskVersionResponse {
    return {
      version: v.version,
      action: v.action,
      changedFields: v.changedFields,
      definition: v.definition,
      actor: v.actor === null && v.actorKeyId === null ? null : { apiKeyId: v.actorKeyId, name: v.actor },
      requestId: v.requestId,
      changedAt: v.createdAt.toISOString(),
    };
  }
}

export const TaskVersionPage = PageOf(TaskVersionResponse);

export class DeletedScheduleRef {
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
}

export class TaskDeletedResponse {
  @ApiProperty() id!: string;
  @ApiProperty({ type: [DeletedScheduleRef], description: 'Schedules deleted with the task (cascade=true); empty otherwise.' })
  deletedSchedules!: DeletedScheduleRef[];
}
