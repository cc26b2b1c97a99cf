import type { AlertSpec, ExecutorKind, HttpSpec, RetrySpec, ShellSpec } from '@task-scheduler/contracts';
import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

@Entity({ name: 'tasks' })
export class TaskEntity {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column('uuid', { name: 'tenant_id' }) tenantId!: string;
  @Column('text') name!: string;
  @Column('text', { nullable: true }) description!: string | null;
  @Column('text') executor!: ExecutorKind;
  /** Executor spec: a {@link ShellSpec} or an {@link HttpSpec}, by `executor`. */
  @Column('jsonb') spec!: ShellSpec | HttpSpec;
  /** Secret values (shell env / http headers), AES-256-GCM sealed with SECRETS_KEY; never returned by the API. */
  @Column('text', { nullable: true }) secrets!: string | null;
  /** Names of the secret values, the only part of them the API shows. */
  @Column('jsonb', { name: 'secret_names' }) secretNames!: { env?: string[]; headers?: string[] };
  @Column('jsonb', { nullable: true }) alerts!: AlertSpec | null;
  @Column('integer', { name: 'timeout_seconds' }) timeoutSeconds!: number;
  @Column('jsonb', { name: 'retry_policy' }) retryPolicy!: RetrySpec;
  @Column('integer') priority!: number;
  @Column('text', { array: true }) tags!: string[];
  @Column('jsonb') metadata!: Record<string, unknown>;
  @Column('integer', { name: 'shard_count' }) shardCount!: number;
  @Column('boolean') enabled!: boolean;
  @Column('integer') version!: number;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
  @Column('timestamptz', { name: 'deleted_at', nullable: true }) deletedAt!: Date | null;
}
