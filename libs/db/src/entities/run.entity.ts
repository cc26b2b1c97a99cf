import type { RunStatus, RunTrigger } from '@task-scheduler/contracts';
import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

@Entity({ name: 'runs' })
export class RunEntity {
  /** Chosen by the API before the workflow starts, so the workflow id can be derived from it. */
  @PrimaryColumn('uuid') id!: string;
  @Column('uuid', { name: 'tenant_id' }) tenantId!: string;
  @Column('uuid', { name: 'task_id' }) taskId!: string;
  @Column('integer', { name: 'task_version' }) taskVersion!: number;
  @Column('text') trigger!: RunTrigger;
  @Column('text') status!: RunStatus;
  @Column('integer') attempts!: number;
  @Column('text', { name: 'idempotency_key', nullable: true }) idempotencyKey!: string | null;
  @Column('text', { name: 'workflow_id' }) workflowId!: string;
  @Column('text', { name: 'temporal_run_id', nullable: true }) temporalRunId!: string | null;
  @Column('text', { name: 'worker_identity', nullable: true }) workerIdentity!: string | null;
  @Column('integer', { name: 'exit_code', nullable: true }) exitCode!: number | null;
  @Column('text', { nullable: true }) error!: string | null;
  @Column('text', { nullable: true }) stdout!: string | null;
  @Column('boolean', { name: 'stdout_truncated' }) stdoutTruncated!: boolean;
  @Column('text', { nullable: true }) stderr!: string | null;
  @Column('boolean', { name: 'stderr_truncated' }) stderrTruncated!: boolean;
  @Column('timestamptz', { name: 'queued_at' }) queuedAt!: Date;
  @Column('timestamptz', { name: 'started_at', nullable: true }) startedAt!: Date | null;
  @Column('timestamptz', { name: 'finished_at', nullable: true }) finishedAt!: Date | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
}
