import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

export type AlertChannelType = 'webhook' | 'slack' | 'email';
export type AlertRuleKind = 'consecutive_failures' | 'missed_fire' | 'queued_too_long' | 'running_too_long';
export type AlertState = 'firing' | 'resolved';

/** Where a tenant's alerts are sent (docs/alerts.md). A webhook's signing secret is sealed; nothing else is secret. */
@Entity({ name: 'alert_channels' })
export class AlertChannelEntity {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column('uuid', { name: 'tenant_id' }) tenantId!: string;
  @Column('text') name!: string;
  @Column('text') type!: AlertChannelType;
  @Column('text', { nullable: true }) url!: string | null;
  @Column('text', { name: 'email_to', array: true, nullable: true }) emailTo!: string[] | null;
  /** The webhook signing secret, sealed with SECRETS_KEY (libs/core secrets). */
  @Column('text', { name: 'secret_sealed', nullable: true, select: false }) secretSealed!: string | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
}

/** What opens an alert, for which task or schedule (null: all of the tenant's), and whom it tells. */
@Entity({ name: 'alert_rules' })
export class AlertRuleEntity {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column('uuid', { name: 'tenant_id' }) tenantId!: string;
  @Column('text') name!: string;
  @Column('text') kind!: AlertRuleKind;
  @Column('uuid', { name: 'task_id', nullable: true }) taskId!: string | null;
  @Column('uuid', { name: 'schedule_id', nullable: true }) scheduleId!: string | null;
  @Column('integer') failures!: number;
  @Column('integer') recoveries!: number;
  @Column('integer', { name: 'threshold_seconds', nullable: true }) thresholdSeconds!: number | null;
  @Column('uuid', { name: 'channel_id' }) channelId!: string;
  @Column('uuid', { name: 'escalation_channel_id', nullable: true }) escalationChannelId!: string | null;
  @Column('integer', { name: 'escalate_after_seconds', nullable: true }) escalateAfterSeconds!: number | null;
  @Column('integer', { name: 'renotify_seconds', nullable: true }) renotifySeconds!: number | null;
  @Column('boolean') enabled!: boolean;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
}

/** One alert: opened by a rule for one task or schedule, `firing` until resolved. At most one firing per (rule, subject). */
@Entity({ name: 'alerts' })
export class AlertEntity {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column('uuid', { name: 'tenant_id' }) tenantId!: string;
  @Column('uuid', { name: 'rule_id' }) ruleId!: string;
  @Column('text', { name: 'subject_type' }) subjectType!: 'task' | 'schedule';
  @Column('uuid', { name: 'subject_id' }) subjectId!: string;
  @Column('text') state!: AlertState;
  @Column('text') summary!: string;
  @Column('jsonb') details!: Record<string, unknown>;
  /** When it opened. */
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @Column('timestamptz', { name: 'resolved_at', nullable: true }) resolvedAt!: Date | null;
  @Column('timestamptz', { name: 'last_notified_at', nullable: true }) lastNotifiedAt!: Date | null;
  @Column('integer', { name: 'notify_count' }) notifyCount!: number;
  @Column('timestamptz', { name: 'escalated_at', nullable: true }) escalatedAt!: Date | null;
  @Column('timestamptz', { name: 'acked_at', nullable: true }) ackedAt!: Date | null;
  @Column('text', { name: 'acked_by', nullable: true }) ackedBy!: string | null;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
}
