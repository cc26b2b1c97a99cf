import type { AttemptStatus } from '@task-scheduler/contracts';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import type { OutputStoreSummary } from '../run-output-store';

@Entity({ name: 'run_attempts' })
export class RunAttemptEntity {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column('uuid', { name: 'run_id' }) runId!: string;
  @Column('uuid', { name: 'tenant_id' }) tenantId!: string;
  @Column('integer', { name: 'shard_index' }) shardIndex!: number;
  @Column('integer') attempt!: number;
  @Column('text') status!: AttemptStatus;
  @Column('text', { name: 'worker_identity', nullable: true }) workerIdentity!: string | null;
  @Column('integer', { name: 'exit_code', nullable: true }) exitCode!: number | null;
  @Column('integer', { name: 'http_status', nullable: true }) httpStatus!: number | null;
  @Column('text', { nullable: true }) error!: string | null;
  @Column('text', { nullable: true }) stdout!: string | null;
  @Column('boolean', { name: 'stdout_truncated' }) stdoutTruncated!: boolean;
  @Column('text', { nullable: true }) stderr!: string | null;
  @Column('boolean', { name: 'stderr_truncated' }) stderrTruncated!: boolean;
  @Column('text', { nullable: true }) isolation!: 'sandbox' | 'none' | null;
  @Column('text', { name: 'resource_limit', nullable: true }) resourceLimit!: string | null;
  /** Printed, kept and truncated bytes per stream in the run output store; null while running and for attempts from before the store. */
  @Column('jsonb', { name: 'output_store', nullable: true }) outputStore!: OutputStoreSummary | null;
  @Column('timestamptz', { name: 'started_at' }) startedAt!: Date;
  @Column('timestamptz', { name: 'finished_at', nullable: true }) finishedAt!: Date | null;
}
