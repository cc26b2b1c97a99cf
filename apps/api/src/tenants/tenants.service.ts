import type { TenantShellPolicy } from '@task-scheduler/contracts';
import type { TenantShellPolicyDto } from './dtos/tenant-shell-policy.dto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { TENANT_DEFAULT_LIMITS, TenantEntity, tenantRunsToWake } from '@task-scheduler/db';
import { Client } from '@temporalio/client';
import { DataSource } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import type { RequestContext } from '../auth/request-context';
import { ApiError, ErrorCode } from '../common/api-error';
import { isUniqueViolation } from '../common/db-errors';
import { isUuid, keysetPage } from '../common/pagination';
import { wakeWaitingRuns } from '../common/temporal';
import { TEMPORAL_CLIENT } from '../infra/tokens';
import type { Page } from '../common/pagination';
import { SchedulesService } from '../schedules/schedules.service';
import type { CreateTenantDto, TenantLimitsDto, UpdateTenantDto } from './dtos/tenant.dto';

function applyLimits(t: TenantEntity, limits: TenantLimitsDto | undefined): void {
  if (limits?.maxConcurrentRuns !== undefined) t.maxConcurrentRuns = limits.maxConcurrentRuns;
  if (limits?.maxTasks !== undefined) t.maxTasks = limits.maxTasks;
  if (limits?.requestsPerMinute !== undefined) t.rateLimitPerMinute = limits.requestsPerMinute;
}

/** The stored form of a shell policy: only the fields given. */
function shellPolicyOf(dto: TenantShellPolicyDto | undefined): TenantShellPolicy | undefined {
  if (!dto) return undefined;
  const maxLimits = Object.fromEntries(Object.entries(dto.maxLimits ?? {}).filter(([, v]) => v !== undefined));
  return {
    ...(dto.allowEgress !== undefined ? { allowEgress: dto.allowEgress } : {}),
    ...(Object.keys(maxLimits).length ? { maxLimits } : {}),
  };
}

/** Tenant management for the platform admin. Audit events go to the tenant acted upon. */
@Injectable()
export class TenantsService {
  private readonly logger = new Logger('TenantsService');

  constructor(
    private readonly db: DataSource,
    private readonly audit: AuditService,
    private readonly schedules: SchedulesService,
    @Inject(TEMPORAL_CLIENT) private readonly temporal: Client,
  ) {}

  async create(ctx: RequestContext, dto: CreateTenantDto): Promise<TenantEntity> {
    return this.db.transaction(async (tx) => {
      const repo = tx.getRepository(TenantEntity);
      const t = repo.create({ slug: dto.slug, name: dto.name, status: 'active', ...TENANT_DEFAULT_LIMITS });
      applyLimits(t, dto.limits);
      t.shellPolicy = shellPolicyOf(dto.shellPolicy) ?? null;
      let saved: TenantEntity;
      try {
        saved = await repo.save(t);
      } catch (err) {
        if (isUniqueViolation(err)) throw new ApiError(ErrorCode.TENANT_SLUG_TAKEN, `a tenant with slug ${dto.slug} already exists`);
        throw err;
      }
      await this.audit.record(tx, ctx, {
        action: 'tenant.create',
        targetType: 'tenant',
        targetId: saved.id,
        details: { slug: saved.slug },
      });
      return saved;
    });
  }

  async get(id: string): Promise<TenantEntity> {
    const t = isUuid(id) ? await this.db.getRepository(TenantEntity).findOneBy({ id }) : null;
    if (!t) throw new ApiError(ErrorCode.TENANT_NOT_FOUND, `tenant ${id} does not exist`);
    return t;
  }

  list(limit: number, cursor?: string): Promise<Page<TenantEntity>> {
    return keysetPage(this.db.getRepository(TenantEntity).createQueryBuilder('t'), 't', limit, cursor);
  }

  /**
   * Changes a tenant. Suspending it pauses its schedules in Temporal;
   * resuming gives each schedule its own state back (a schedule the tenant
   * had paused stays paused).
   */
  async update(ctx: RequestContext, id: string, dto: UpdateTenantDto): Promise<TenantEntity> {
    const { saved, statusChanged, wake } = await this.db.transaction(async (tx) => {
      const repo = tx.getRepository(TenantEntity);
      const t = isUuid(id) ? await repo.findOne({ where: { id }, lock: { mode: 'pessimistic_write' } }) : null;
      if (!t) throw new ApiError(ErrorCode.TENANT_NOT_FOUND, `tenant ${id} does not exist`);
      if (dto.status === 'suspended' && t.id === ctx.tenantId) {
        throw new ApiError(ErrorCode.TENANT_SELF_SUSPEND, 'the platform admin cannot suspend its own tenant (it would lock itself out)');
      }
      const before = {
        name: t.name,
        status: t.status,
        maxConcurrentRuns: t.maxConcurrentRuns,
        maxTasks: t.maxTasks,
        rateLimitPerMinute: t.rateLimitPerMinute,
        shellPolicy: t.shellPolicy,
        retentionDays: t.retentionDays,
      };
      if (dto.name !== undefined) t.name = dto.name;
      if (dto.status !== undefined) t.status = dto.status;
      applyLimits(t, dto.limits);
      // Fields given replace their own values only: `maxLimits` replaces the caps, `allowEgress` the flag.
      if (dto.shellPolicy !== undefined) t.shellPolicy = { ...(t.shellPolicy ?? {}), ...shellPolicyOf(dto.shellPolicy) };
      if (dto.retentionDays !== undefined) t.retentionDays = dto.retentionDays;
      const saved = await repo.save(t);
      await this.audit.record(tx, ctx, {
        action: 'tenant.update',
        targetType: 'tenant',
        targetId: t.id,
        details: { before, changes: { ...dto } },
      });
      // More slots: the runs refused one start now, not at their next re-check (5-90 s, jittered).
      const wake = saved.maxConcurrentRuns > before.maxConcurrentRuns ? await tenantRunsToWake(tx, saved.id) : [];
      return { saved, statusChanged: before.status !== saved.status, wake };
    });
    await wakeWaitingRuns(this.temporal, wake, this.logger);
    if (statusChanged) await this.schedules.applyTenantState(saved.id, saved.status === 'suspended');
    // Schedules carry each fire's input, limits included: they take the new policy from their next fire.
    else if (dto.shellPolicy !== undefined) await this.schedules.resyncTenant(saved.id);
    return saved;
  }
}
