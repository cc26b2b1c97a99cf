import type { PipelineDefinition } from '@task-scheduler/contracts';
import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/** What made a pipeline version. The one list: the migration's CHECK spells it in SQL. */
export const PIPELINE_VERSION_ACTIONS = ['create', 'update'] as const;
export type PipelineVersionAction = (typeof PIPELINE_VERSION_ACTIONS)[number];

/** One version of a pipeline; append-only. A run executes the definition of the version it started at. */
@Entity({ name: 'pipeline_versions' })
export class PipelineVersionEntity {
  @PrimaryColumn('uuid', { name: 'pipeline_id' }) pipelineId!: string;
  @PrimaryColumn('integer') version!: number;
  @Column('uuid', { name: 'tenant_id' }) tenantId!: string;
  @Column('text') action!: PipelineVersionAction;
  /** Top-level fields that differ from the previous version (every field for version 1). */
  @Column('text', { name: 'changed_fields', array: true }) changedFields!: string[];
  @Column('text') name!: string;
  @Column('text', { nullable: true }) description!: string | null;
  @Column('jsonb') definition!: PipelineDefinition;
  /** Null for a JWT caller. */
  @Column('uuid', { name: 'actor_key_id', nullable: true }) actorKeyId!: string | null;
  /** `key:<prefix>` or `jwt:<subject>`, as the audit log records it. */
  @Column('text', { nullable: true }) actor!: string | null;
  @Column('text', { name: 'request_id', nullable: true }) requestId!: string | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
}
