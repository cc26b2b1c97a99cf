import { Inject, Injectable } from '@nestjs/common';
import type { AppConfig } from '@task-scheduler/config';
import type { TenantEntity } from '@task-scheduler/db';
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { ApiError, ErrorCode } from '../common/api-error';
import { APP_CONFIG } from '../infra/tokens';
import { MetricsService } from '../metrics/metrics.service';

const WINDOW_SECONDS = 60;

/**
 * Per-key and per-tenant request limits, counted in PostgreSQL so every API
 * process shares one count: PostgreSQL is already a dependency every API
 * process has, while Redis would add a second stateful service for one
 * counter. rate-limiter-flexible does the atomic upsert-and-expire.
 */
@Injectable()
export class RateLimitService {
  private readonly limiters = new Map<string, RateLimiterPostgres>();

  constructor(
    private readonly db: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {}

  private limiter(kind: 'key' | 'tenant', points: number): RateLimiterPostgres {
    const id = `${kind}:${points}`;
    let limiter = this.limiters.get(id);
    if (!limiter) {
      limiter = new RateLimiterPostgres({
        storeClient: (this.db.driver as PostgresDriver).master,
        tableName: 'rate_limits',
        tableCreated: true,
        keyPrefix: kind,
        points,
        duration: WINDOW_SECONDS,
      });
      this.limiters.set(id, limiter);
    }
    return limiter;
  }

  /** The caller's key of the per-key limit: its API key id, or tenant and JWT subject. */
  static callerId(ctx: { apiKeyId: string | null; tenantId: string; actor: string }): string {
    return ctx.apiKeyId ?? `${ctx.tenantId}:${ctx.actor}`;
  }

  /** Requests left in the current window of each limit, read without counting one (one row read per limit). */
  async remaining(callerId: string, tenant: TenantEntity): Promise<{ key: number; tenant: number; windowSeconds: number }> {
    const left = async (kind: 'key' | 'tenant', id: string, points: number): Promise<number> => {
      const res = await this.limiter(kind, points).get(id);
      return res ? Math.max(0, res.remainingPoints) : points;
    };
    return {
      key: await left('key', callerId, this.config.RATE_LIMIT_PER_KEY_PER_MINUTE),
      tenant: await left('tenant', tenant.id, tenant.rateLimitPerMinute),
      windowSeconds: WINDOW_SECONDS,
    };
  }

  /** Counts one request of a caller (API key id, or tenant and JWT subject); throws 429 RATE_LIMITED with a retry delay when a limit is exceeded. */
  async consume(callerId: string, tenant: TenantEntity): Promise<void> {
    const checks: [string, 'key' | 'tenant', string, number][] = [
      ['API key', 'key', callerId, this.config.RATE_LIMIT_PER_KEY_PER_MINUTE],
      ['tenant', 'tenant', tenant.id, tenant.rateLimitPerMinute],
    ];
    for (const [label, kind, id, points] of checks) {
      try {
        await this.limiter(kind, points).consume(id);
      } catch (res) {
        if (!(res instanceof RateLimiterRes)) throw res;
        this.metrics.rateLimited(kind);
        const retryAfterSeconds = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
        throw new ApiError(
          ErrorCode.RATE_LIMITED,
          `${label} request limit of ${points} per minute reached; retry in ${retryAfterSeconds}s`,
          [
            {
              message: `at most ${points} requests per ${WINDOW_SECONDS}s`,
              limit: points,
              windowSeconds: WINDOW_SECONDS,
              scope: kind,
              retryAfterSeconds,
            },
          ],
        );
      }
    }
  }
}
