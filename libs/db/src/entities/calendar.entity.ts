import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

/** A weekly window in which schedules using the calendar do not fire: day of week 0 (Sunday) to 6, times HH:MM. */
export interface WeeklyWindow {
  dayOfWeek: number;
  start: string;
  end: string;
}

/** A tenant's business calendar: days and weekly windows excluded from the schedules that reference it. */
@Entity({ name: 'calendars' })
export class CalendarEntity {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column('uuid', { name: 'tenant_id' }) tenantId!: string;
  @Column('text') name!: string;
  @Column('text', { nullable: true }) description!: string | null;
  /** ISO dates (YYYY-MM-DD), read in each schedule's time zone. */
  @Column('jsonb') holidays!: string[];
  @Column('jsonb', { name: 'weekly_windows' }) weeklyWindows!: WeeklyWindow[];
  @Column('integer') version!: number;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
  @Column('timestamptz', { name: 'deleted_at', nullable: true }) deletedAt!: Date | null;
}
