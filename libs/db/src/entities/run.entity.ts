import type { RunOutputs, RunOverrides, RunStatus, RunTrigger } from '@task-scheduler/contracts';
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
  @Column('integer', { name: 'http_status', nullable: true }) httpStatus!: number | null;
  /** Trigger parameters merged over the task's spec for this run. */
  @Column('jsonb') overrides!: RunOverrides;
  /** SHA-256 of the trigger request body, to tell a replay of an Idempotency-Key from a conflicting reuse. */
  @Column('text', { name: 'request_hash', nullable: true }) requestHash!: string | null;
  @Column('uuid', { name: 'retry_of_run_id', nullable: true }) retryOfRunId!: string | null;
  @Column('integer') priority!: number;
  @Column('integer', { name: 'shard_count' }) shardCount!: number;
  /** When the run took one of its tenant's concurrency slots; null while it waits. */
  @Column('timestamptz', { name: 'admitted_at', nullable: true }) admittedAt!: Date | null;
  /** When the run first found no free slot (libs/db/src/run-slots.ts); only such runs are woken. */
  @Column('timestamptz', { name: 'slot_refused_at', nullable: true }) slotRefusedAt!: Date | null;
  /** Ended failed or timed out with no attempt left: listed as a dead letter until re-driven. */
  @Column('boolean', { name: 'dead_letter' }) deadLetter!: boolean;
  @Column('timestamptz', { name: 'redriven_at', nullable: true }) redrivenAt!: Date | null;
  @Column('uuid', { name: 'redriven_by_run_id', nullable: true }) redrivenByRunId!: string | null;
  /** The schedule whose fire started this run, and the fire's nominal time. */
  @Column('uuid', { name: 'schedule_id', nullable: true }) scheduleId!: string | null;
  @Column('timestamptz', { name: 'scheduled_at', nullable: true }) scheduledAt!: Date | null;
  /** A pipeline step's run: its pipeline run, step, and item of a `forEach` step (null for a step without one). */
  @Column('uuid', { name: 'pipeline_run_id', nullable: true }) pipelineRunId!: string | null;
  @Column('text', { name: 'pipeline_step_key', nullable: true }) pipelineStepKey!: string | null;
  @Column('integer', { name: 'item_index', nullable: true }) itemIndex!: number | null;
  /** What the run reported (shell `$TASK_OUTPUTS`, HTTP status and JSON body), secrets masked; null when none. */
  @Column('jsonb', { nullable: true }) outputs!: RunOutputs | null;
  @Column('timestamptz', { name: 'queued_at' }) queuedAt!: Date;
  @Column('timestamptz', { name: 'started_at', nullable: true }) startedAt!: Date | null;
  @Column('timestamptz', { name: 'finished_at', nullable: true }) finishedAt!: Date | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
}
