import type { StepReason, StepStatus } from '@task-scheduler/contracts';
import { Column, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/** The state of one step in a pipeline run; every step has a row from the run's opening on. */
@Entity({ name: 'pipeline_run_steps' })
export class PipelineRunStepEntity {
  @PrimaryColumn('uuid', { name: 'pipeline_run_id' }) pipelineRunId!: string;
  @PrimaryColumn('text', { name: 'step_key' }) stepKey!: string;
  @Column('uuid', { name: 'tenant_id' }) tenantId!: string;
  @Column('uuid', { name: 'task_id' }) taskId!: string;
  @Column('text') status!: StepStatus;
  @Column('text', { nullable: true }) reason!: StepReason | null;
  @Column('text', { nullable: true }) error!: string | null;
  /** Items of a `forEach` step; null for a step without one. */
  @Column('integer', { name: 'item_count', nullable: true }) itemCount!: number | null;
  /** The resolved `forEach` list. */
  @Column('jsonb', { nullable: true }) items!: unknown[] | null;
  /** What dependants read as `steps.<key>.outputs`: its run's outputs, or the list of its items' in item order. */
  @Column('jsonb', { nullable: true }) outputs!: unknown;
  /** A retry's reused step: the pipeline run whose succeeded step (and outputs) it took over. */
  @Column('uuid', { name: 'reused_from_pipeline_run_id', nullable: true }) reusedFromPipelineRunId!: string | null;
  @Column('timestamptz', { name: 'started_at', nullable: true }) startedAt!: Date | null;
  @Column('timestamptz', { name: 'finished_at', nullable: true }) finishedAt!: Date | null;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
}
