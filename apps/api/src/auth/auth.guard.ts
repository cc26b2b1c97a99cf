import { Injectable } from '@nestjs/common';
import type { CanActivate, ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { apiKeySecretMatches, hashApiKeySecret, parseApiKey } from '@task-scheduler/core';
import { ApiKeyEntity, TenantEntity } from '@task-scheduler/db';
import type { ApiKeyRole } from '@task-scheduler/db';
import { DataSource } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import { ApiError, ErrorCode } from '../common/api-error';
import { MetricsService } from '../metrics/metrics.service';
import { JwtVerifier } from './jwt-verifier';
import { ANY_AUTHENTICATED, REQUIRED_PERMISSION, permissionsOf } from './permissions';
import type { Permission } from './permissions';
import { IS_PUBLIC } from './public.decorator';
import { RateLimitService } from './rate-limit.service';
import { routeOf } from './request-context';
import type { AuthenticatedRequest, RequestContext } from './request-context';

// Compared against when the prefix is unknown, so both failure paths do the same work.
const DUMMY_HASH = hashApiKeySecret('no-such-key');

interface Principal {
  tenantId: string;
  apiKeyId: string | null;
  actor: string;
  token: RequestContext['token'];
  role: ApiKeyRole;
  customPermissions: string[];
  platformAdmin: boolean;
}

class AuthFailure extends Error {
  constructor(
    readonly reason: string,
    readonly prefix?: string,
    readonly tenantId?: string,
  ) {
    super(reason);
  }
}

/**
 * Authenticates every non-public route, by `x-api-key` or (when configured) an
 * `Authorization: Bearer` JWT, then applies tenant suspension, rate limits and
 * the route's permission. Every way of failing authentication answers the same
 * 401 body, so a caller cannot tell which keys exist; the real reason goes to
 * the audit log.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly db: DataSource,
    private readonly rateLimits: RateLimitService,
    private readonly jwt: JwtVerifier,
    private readonly audit: AuditService,
    private readonly metrics: MetricsService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()])) return true;
    const req = context
      .switchToHttp()
      .getRequest<AuthenticatedRequest & { headers: Record<string, unknown>; method: string; originalUrl: string }>();

    let principal: Principal;
    let tenant: TenantEntity | null;
    try {
      principal = await this.authenticate(req.headers);
      tenant = await this.db.getRepository(TenantEntity).findOneBy({ id: principal.tenantId });
      // A token may name a tenant that does not exist (a key's tenant always does: foreign key).
      if (!tenant) throw new AuthFailure('credential names an unknown tenant');
    } catch (err) {
      if (!(err instanceof AuthFailure)) throw err;
      this.metrics.authFailed(err.reason);
      await this.audit.recordAuthFailure({
        requestId: req.id,
        tenantId: err.tenantId ?? null,
        reason: err.reason,
        prefix: err.prefix,
        route: routeOf(req),
      });
      throw new ApiError(ErrorCode.UNAUTHENTICATED, 'a valid API key (x-api-key) or bearer token is required');
    }
    if (tenant.status !== 'active') throw new ApiError(ErrorCode.TENANT_SUSPENDED, 'this tenant is suspended');
    await this.rateLimits.consume(RateLimitService.callerId(principal), tenant);

    const permissions = permissionsOf(principal.role, principal.customPermissions, principal.platformAdmin);
    req.auth = {
      tenantId: principal.tenantId,
      apiKeyId: principal.apiKeyId,
      actor: principal.actor,
      token: principal.token,
      role: principal.role,
      permissions,
      platformAdmin: principal.platformAdmin,
      requestId: req.id,
    };

    const required = this.reflector.getAllAndOverride<Permission | typeof ANY_AUTHENTICATED | undefined>(REQUIRED_PERMISSION, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (!required) throw new Error(`route ${context.getClass().name}.${context.getHandler().name} declares no permission`);
    if (required !== ANY_AUTHENTICATED && !permissions.has(required)) {
      throw new ApiError(ErrorCode.FORBIDDEN, `this credential lacks the permission ${required}`, [
        { message: `requires ${required}`, permission: required },
      ]);
    }
    return true;
  }

  private async authenticate(headers: Record<string, unknown>): Promise<Principal> {
    const authorization = headers['authorization'];
    if (typeof authorization === 'string' && /^bearer /i.test(authorization)) {
      if (!this.jwt.enabled) throw new AuthFailure('bearer token sent but JWT is not configured');
      const identity = await this.jwt.verify(authorization.slice(7).trim());
      if (!identity) throw new AuthFailure('invalid bearer token');
      return {
        tenantId: identity.tenantId,
        apiKeyId: null,
        actor: `jwt:${identity.subject}`,
        token: { subject: identity.subject, issuer: identity.issuer, expiresAt: identity.expiresAt },
        role: identity.role,
        customPermissions: [],
        platformAdmin: false,
      };
    }

    const header = headers['x-api-key'];
    if (typeof header !== 'string') throw new AuthFailure('no credential');
    const parsed = parseApiKey(header);
    if (!parsed) throw new AuthFailure('malformed API key');
    const key = await this.db.getRepository(ApiKeyEntity).findOneBy({ prefix: parsed.prefix });
    const matches = apiKeySecretMatches(parsed.secret, key?.secretHash ?? DUMMY_HASH);
    if (!key) throw new AuthFailure('unknown API key prefix', parsed.prefix);
    if (!matches) throw new AuthFailure('wrong API key secret', key.prefix, key.tenantId);
    const now = new Date();
    if (key.revokedAt) throw new AuthFailure('revoked API key', key.prefix, key.tenantId);
    if (key.expiresAt && key.expiresAt <= now) throw new AuthFailure('expired API key', key.prefix, key.tenantId);

    // Last-used time at minute granularity: one write per key per minute, not per request.
    if (!key.lastUsedAt || now.getTime() - key.lastUsedAt.getTime() > 60_000) {
      await this.db.getRepository(ApiKeyEntity).update({ id: key.id }, { lastUsedAt: now });
    }
    return {
      tenantId: key.tenantId,
      apiKeyId: key.id,
      actor: `key:${key.prefix}`,
      token: null,
      role: key.role,
      customPermissions: key.permissions,
      platformAdmin: key.platformAdmin,
    };
  }
}
