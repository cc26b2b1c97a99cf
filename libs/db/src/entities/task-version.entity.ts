import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';

/**
 * What changed a task version: its creation, a PATCH, disable/enable, or the migration that recorded existing
 * tasks. The one list: the entity and the API's response schema use it; the migration's CHECK spells it in SQL.
 */
export const TASK_VERSION_ACTIONS = ['create', 'update', 'disable', 'enable', 'migrated'] as const;
export type TaskVersionAction = (typeof TASK_VERSION_ACTIONS)[number];

/** One version of a task definition; append-only. `definition` holds secret names only (values shown as `***`). */
@Entity({ name: 'task_versions' })
export class TaskVersionEntity {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column('uuid', { name: 'tenant_id' }) tenantId!: string;
  @Column('uuid', { name: 'task_id' }) taskId!: string;
  @Column('integer') version!: number;
  @Column('text') action!: TaskVersionAction;
  /** Top-level fields of the definition that differ from the previous version (every field for version 1). */
  @Column('text', { name: 'changed_fields', array: true }) changedFields!: string[];
  @Column('jsonb') definition!: Record<string, unknown>;
  /** Null for a JWT caller or the migration. */
  @Column('uuid', { name: 'actor_key_id', nullable: true }) actorKeyId!: string | null;
  /** `key:<prefix>` or `jwt:<subject>`, as the audit log records it; null for the migration. */
  @Column('text', { nullable: true }) actor!: string | null;
  @Column('text', { name: 'request_id', nullable: true }) requestId!: string | null;
  /** When the version was written (insert time, so it follows version order). */
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
}
