import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { RetrySpec, ShellSpec } from '@task-scheduler/contracts';
import type { TaskEntity } from '@task-scheduler/db';
import { PageOf } from '../../common/page.dto';

export class TaskResponse {
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) description!: string | null;
  @ApiProperty({ enum: ['shell'] }) executor!: string;
  @ApiPropertyOptional({ type: Object }) shell?: ShellSpec;
  @ApiProperty() timeoutSeconds!: number;
  @ApiProperty({ type: Object }) retry!: RetrySpec;
  @ApiProperty() priority!: number;
  @ApiProperty({ type: [String] }) tags!: string[];
  @ApiProperty({ type: Object }) metadata!: Record<string, unknown>;
  @ApiProperty() enabled!: boolean;
  @ApiProperty() version!: number;
  @ApiProperty() createdAt!: string;
  @ApiProperty() updatedAt!: string;

  static from(t: TaskEntity): TaskResponse {
    return {
      id: t.id,
      name: t.name,
      description: t.description,
      executor: t.executor,
      ...(t.executor === 'shell' ? { shell: t.spec } : {}),
      timeoutSeconds: t.timeoutSeconds,
      retry: t.retryPolicy,
      priority: t.priority,
      tags: t.tags,
      metadata: t.metadata,
      enabled: t.enabled,
      version: t.version,
      createdAt: t.createdAt.toISOString(),
      updatedAt: t.updatedAt.toISOString(),
    };
  }
}

export const TaskPage = PageOf(TaskResponse);
