import type { AlertSpec, PipelineDefinition } from '@task-scheduler/contracts';
import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

/** A pipeline: a DAG of task steps, at its current version. */
@Entity({ name: 'pipelines' })
export class PipelineEntity {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column('uuid', { name: 'tenant_id' }) tenantId!: string;
  @Column('text') name!: string;
  @Column('text', { nullable: true }) description!: string | null;
  @Column('integer') version!: number;
  /** Steps with their tasks resolved to ids, parameters, parallelism and failure policy. */
  @Column('jsonb') definition!: PipelineDefinition;
  /** Alerts of this pipeline's runs; null: the tenant's alert settings. */
  @Column('jsonb', { nullable: true }) alerts!: AlertSpec | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
  @Column('timestamptz', { name: 'deleted_at', nullable: true }) deletedAt!: Date | null;
}
