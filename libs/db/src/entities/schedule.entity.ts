import type { SchedulePolicyInput, ScheduleSpecInput } from '@task-scheduler/contracts';
import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

/** A schedule as the tenant defined it; Temporal holds its mirror under `temporalScheduleId`. */
@Entity({ name: 'schedules' })
export class ScheduleEntity {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column('uuid', { name: 'tenant_id' }) tenantId!: string;
  /** What the schedule fires: exactly one of a task and a pipeline. */
  @Column('uuid', { name: 'task_id', nullable: true }) taskId!: string | null;
  @Column('uuid', { name: 'pipeline_id', nullable: true }) pipelineId!: string | null;
  /** A pipeline schedule's run parameters; null for a task schedule. */
  @Column('jsonb', { nullable: true }) params!: Record<string, unknown> | null;
  @Column('text') name!: string;
  @Column('text', { nullable: true }) description!: string | null;
  /** The spec as given, minus `excludeCalendarIds` (kept in their own column). */
  @Column('jsonb') spec!: Omit<ScheduleSpecInput, 'excludeCalendarIds'>;
  @Column('jsonb') policies!: SchedulePolicyInput;
  @Column('uuid', { name: 'exclude_calendar_ids', array: true }) excludeCalendarIds!: string[];
  /** Paused by the tenant (a suspended tenant's schedules are paused in Temporal regardless). */
  @Column('boolean') paused!: boolean;
  @Column('text', { name: 'pause_note', nullable: true }) pauseNote!: string | null;
  @Column('text', { name: 'temporal_schedule_id' }) temporalScheduleId!: string;
  @Column('integer') version!: number;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
  @Column('timestamptz', { name: 'deleted_at', nullable: true }) deletedAt!: Date | null;
}
