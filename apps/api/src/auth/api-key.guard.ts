import { Injectable } from '@nestjs/common';
import type { CanActivate, ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { apiKeySecretMatches, hashApiKeySecret, parseApiKey } from '@task-scheduler/core';
import { ApiKeyEntity, TenantEntity } from '@task-scheduler/db';
import { DataSource } from 'typeorm';
import { ApiError, ErrorCode } from '../common/api-error';
import { REQUIRED_PERMISSION, permissionsOf } from './permissions';
import type { Permission } from './permissions';
import { IS_PUBLIC } from './public.decorator';
import { RateLimitService } from './rate-limit.service';
import type { AuthenticatedRequest } from './request-context';

// Compared against when the prefix is unknown, so both failure paths do the same work.
const DUMMY_HASH = hashApiKeySecret('no-such-key');

/**
 * Authenticates every non-public route with the `x-api-key` header. A wrong
 * secret, an unknown prefix, a revoked or an expired key all answer the same
 * 401, so a caller cannot tell which keys exist.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly db: DataSource,
    private readonly rateLimits: RateLimitService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()])) return true;
    const req = context.switchToHttp().getRequest<AuthenticatedRequest & { headers: Record<string, unknown> }>();
    const header = req.headers['x-api-key'];
    const unauthenticated = new ApiError(ErrorCode.UNAUTHENTICATED, 'a valid API key is required in the x-api-key header');
    if (typeof header !== 'string') throw unauthenticated;
    const parsed = parseApiKey(header);
    if (!parsed) throw unauthenticated;

    const key = await this.db.getRepository(ApiKeyEntity).findOneBy({ prefix: parsed.prefix });
    const matches = apiKeySecretMatches(parsed.secret, key?.secretHash ?? DUMMY_HASH);
    const now = new Date();
    if (!key || !matches || key.revokedAt || (key.expiresAt && key.expiresAt <= now)) throw unauthenticated;

    const tenant = await this.db.getRepository(TenantEntity).findOneBy({ id: key.tenantId });
    if (!tenant) throw unauthenticated;
    if (tenant.status !== 'active') throw new ApiError(ErrorCode.TENANT_SUSPENDED, 'this tenant is suspended');

    // Last-used time at minute granularity: one write per key per minute, not per request.
    if (!key.lastUsedAt || now.getTime() - key.lastUsedAt.getTime() > 60_000) {
      await this.db.getRepository(ApiKeyEntity).update({ id: key.id }, { lastUsedAt: now });
    }
    await this.rateLimits.consume(key, tenant);

    const permissions = permissionsOf(key.role, key.permissions, key.platformAdmin);
    req.auth = {
      tenantId: key.tenantId,
      apiKeyId: key.id,
      role: key.role,
      permissions,
      platformAdmin: key.platformAdmin,
      requestId: req.id,
    };

    const required = this.reflector.getAllAndOverride<Permission | undefined>(REQUIRED_PERMISSION, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (!required) throw new Error(`route ${context.getClass().name}.${context.getHandler().name} declares no permission`);
    if (!permissions.has(required)) {
      throw new ApiError(ErrorCode.FORBIDDEN, `this API key lacks the permission ${required}`, { permission: required });
    }
    return true;
  }
}
