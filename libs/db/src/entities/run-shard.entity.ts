import type { RunStatus } from '@task-scheduler/contracts';
import { Column, Entity, PrimaryColumn } from 'typeorm';

/** Final record of one shard of a run (an unsharded run has shard 0). */
@Entity({ name: 'run_shards' })
export class RunShardEntity {
  @PrimaryColumn('uuid', { name: 'run_id' }) runId!: string;
  @PrimaryColumn('integer', { name: 'shard_index' }) shardIndex!: number;
  @Column('uuid', { name: 'tenant_id' }) tenantId!: string;
  @Column('text') status!: RunStatus;
  @Column('integer') attempts!: number;
  @Column('integer', { name: 'exit_code', nullable: true }) exitCode!: number | null;
  @Column('integer', { name: 'http_status', nullable: true }) httpStatus!: number | null;
  @Column('text', { nullable: true }) error!: string | null;
  @Column('text', { nullable: true }) stdout!: string | null;
  @Column('boolean', { name: 'stdout_truncated' }) stdoutTruncated!: boolean;
  @Column('text', { nullable: true }) stderr!: string | null;
  @Column('boolean', { name: 'stderr_truncated' }) stderrTruncated!: boolean;
  @Column('timestamptz', { name: 'finished_at' }) finishedAt!: Date;
}
