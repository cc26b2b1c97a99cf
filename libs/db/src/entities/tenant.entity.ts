import type { AlertSpec, TenantShellPolicy } from '@task-scheduler/contracts';
import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

@Entity({ name: 'tenants' })
export class TenantEntity {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column('text') slug!: string;
  @Column('text') name!: string;
  @Column('text') status!: 'active' | 'suspended';
  @Column('integer', { name: 'max_concurrent_runs' }) maxConcurrentRuns!: number;
  @Column('integer', { name: 'max_tasks' }) maxTasks!: number;
  @Column('integer', { name: 'rate_limit_per_minute' }) rateLimitPerMinute!: number;
  @Column('jsonb', { name: 'alert_settings', nullable: true }) alertSettings!: AlertSpec | null;
  /** Set by the platform admin: egress allowed, caps of shell limits. */
  @Column('jsonb', { name: 'shell_policy', nullable: true }) shellPolicy!: TenantShellPolicy | null;
  /** Days finished runs and audit events are kept; null: the platform's RETENTION_DAYS (docs/retention.md). */
  @Column('integer', { name: 'retention_days', nullable: true }) retentionDays!: number | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt!: Date;
}

/** Limits of a new tenant unless given (the same as the column defaults of the schema). */
export const TENANT_DEFAULT_LIMITS = { maxConcurrentRuns: 100, maxTasks: 1000, rateLimitPerMinute: 600 } as const;
/** The tenant a first start creates in an empty database (and adds `BOOTSTRAP_API_KEY` to). */
export const DEFAULT_TENANT = { slug: 'default', name: 'Default tenant', status: 'active', ...TENANT_DEFAULT_LIMITS } as const;
