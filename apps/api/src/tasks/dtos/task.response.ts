import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { AlertSpec, HttpSpec, RetrySpec, ShellSpec } from '@task-scheduler/contracts';
import type { TaskEntity } from '@task-scheduler/db';
import { PageOf } from '../../common/page.dto';

/** Secret names with `***` for values: what a client may know of a secret. */
function masked<K extends string>(key: K, names: string[] | undefined): Partial<Record<K, Record<string, string>>> {
  return names?.length ? ({ [key]: Object.fromEntries(names.map((n) => [n, '***'])) } as Partial<Record<K, Record<string, string>>>) : {};
}

export class TaskResponse {
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) description!: string | null;
  @ApiProperty({ enum: ['shell', 'http'] }) executor!: string;
  @ApiPropertyOptional({ type: Object, description: 'Shell spec; secretEnv values are shown as ***.' })
  shell?: ShellSpec & { secretEnv?: Record<string, string> };
  @ApiPropertyOptional({ type: Object, description: 'HTTP spec; secretHeaders values are shown as ***.' })
  http?: HttpSpec & { secretHeaders?: Record<string, string> };
  @ApiProperty() shardCount!: number;
  @ApiPropertyOptional({ type: Object, nullable: true }) alerts!: AlertSpec | null;
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
      ...(t.executor === 'shell'
        ? { shell: { ...(t.spec as ShellSpec), ...masked('secretEnv', t.secretNames.env) } }
        : { http: { ...(t.spec as HttpSpec), ...masked('secretHeaders', t.secretNames.headers) } }),
      shardCount: t.shardCount,
      alerts: t.alerts,
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
