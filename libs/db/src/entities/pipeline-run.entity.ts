import type { PipelineRunStatus, PipelineRunTrigger } from '@task-scheduler/contracts';
import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/** One run of a pipeline, at the pipeline version it started with. */
@Entity({ name: 'pipeline_runs' })
export class PipelineRunEntity {
  /** Chosen by the API (manual, retry) or drawn by the workflow (a schedule's fire). */
  @PrimaryColumn('uuid') id!: string;
  @Column('uuid', { name: 'tenant_id' }) tenantId!: string;
  @Column('uuid', { name: 'pipeline_id' }) pipelineId!: string;
  @Column('integer', { name: 'pipeline_version' }) pipelineVersion!: number;
  @Column('text') trigger!: PipelineRunTrigger;
  @Column('text') status!: PipelineRunStatus;
  /** The run's parameters, defaults applied. */
  @Column('jsonb') params!: Record<string, unknown>;
  @Column('text', { name: 'idempotency_key', nullable: true }) idempotencyKey!: string | null;
  /** SHA-256 of the start request body, to tell a replay of an Idempotency-Key from a conflicting reuse. */
  @Column('text', { name: 'request_hash', nullable: true }) requestHash!: string | null;
  @Column('uuid', { name: 'retry_of_pipeline_run_id', nullable: true }) retryOfPipelineRunId!: string | null;
  /** The schedule whose fire started this run, and the fire's nominal time. */
  @Column('uuid', { name: 'schedule_id', nullable: true }) scheduleId!: string | null;
  @Column('timestamptz', { name: 'scheduled_at', nullable: true }) scheduledAt!: Date | null;
  @Column('text', { name: 'workflow_id' }) workflowId!: string;
  @Column('text', { name: 'temporal_run_id', nullable: true }) temporalRunId!: string | null;
  @Column('text', { nullable: true }) error!: string | null;
  @Column('timestamptz', { name: 'queued_at' }) queuedAt!: Date;
  @Column('timestamptz', { name: 'started_at', nullable: true }) startedAt!: Date | null;
  @Column('timestamptz', { name: 'finished_at', nullable: true }) finishedAt!: Date | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
}
