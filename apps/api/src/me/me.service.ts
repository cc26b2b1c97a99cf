import { Inject, Injectable } from '@nestjs/common';
import type { AppConfig } from '@task-scheduler/config';
import { ApiKeyEntity, TenantEntity } from '@task-scheduler/db';
import { DataSource } from 'typeorm';
import type { RequestContext } from '../auth/request-context';
import { RateLimitService } from '../auth/rate-limit.service';
import { isoOrNull } from '../common/page.dto';
import { APP_CONFIG } from '../infra/tokens';
import type { MeResponse } from './dtos/me.response';

interface UsageRow {
  tasks: number;
  schedules: number;
  runs_in_flight: number;
  runs_admitted: number;
}

/** The caller's own view of its credential, tenant, limits and usage. */
@Injectable()
export class MeService {
  constructor(
    private readonly db: DataSource,
    private readonly rateLimits: RateLimitService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async describe(ctx: RequestContext): Promise<MeResponse> {
    const tenant = await this.db.getRepository(TenantEntity).findOneByOrFail({ id: ctx.tenantId });
    // Each count is served by an index of its table (the in-flight ones by the status and admitted indexes).
    const [usage] = (await this.db.query(
      `SELECT (SELECT count(*) FROM tasks WHERE tenant_id = $1 AND deleted_at IS NULL)::int AS tasks,
              (SELECT count(*) FROM schedules WHERE tenant_id = $1 AND deleted_at IS NULL)::int AS schedules,
              (SELECT count(*) FROM runs WHERE tenant_id = $1 AND status IN ('queued', 'running'))::int AS runs_in_flight,
              (SELECT count(*) FROM runs
                WHERE tenant_id = $1 AND admitted_at IS NOT NULL AND status IN ('queued', 'running'))::int AS runs_admitted`,
      [ctx.tenantId],
    )) as UsageRow[];
    const rate = await this.rateLimits.remaining(RateLimitService.callerId(ctx), tenant);
    return {
      tenant: { id: tenant.id, slug: tenant.slug, name: tenant.name, status: tenant.status },
      principal: await this.principal(ctx),
      role: ctx.role,
      permissions: [...ctx.permissions].sort(),
      platformAdmin: ctx.platformAdmin,
      limits: {
        maxTasks: tenant.maxTasks,
        maxConcurrentRuns: tenant.maxConcurrentRuns,
        requestsPerMinute: tenant.rateLimitPerMinute,
        requestsPerMinutePerKey: this.config.RATE_LIMIT_PER_KEY_PER_MINUTE,
        shellPolicy: { allowEgress: tenant.shellPolicy?.allowEgress ?? true, maxLimits: tenant.shellPolicy?.maxLimits ?? {} },
      },
      usage: {
        tasks: usage.tasks,
        schedules: usage.schedules,
        runsInFlight: usage.runs_in_flight,
        runsAdmitted: usage.runs_admitted,
        runsWaiting: usage.runs_in_flight - usage.runs_admitted,
        rateLimit: { keyRemaining: rate.key, tenantRemaining: rate.tenant, windowSeconds: rate.windowSeconds },
      },
    };
  }

  private async principal(ctx: RequestContext): Promise<MeResponse['principal']> {
    if (ctx.token) {
      return { type: 'jwt', subject: ctx.token.subject, issuer: ctx.token.issuer, expiresAt: ctx.token.expiresAt.toISOString() };
    }
    if (!ctx.apiKeyId) throw new Error('request authenticated with neither an API key nor a token');
    const key = await this.db.getRepository(ApiKeyEntity).findOneByOrFail({ id: ctx.apiKeyId, tenantId: ctx.tenantId });
    return { type: 'api_key', id: key.id, name: key.name, prefix: key.prefix, expiresAt: isoOrNull(key.expiresAt) };
  }
}
