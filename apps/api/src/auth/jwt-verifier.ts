import { readFileSync } from 'node:fs';
import { Inject, Injectable } from '@nestjs/common';
import type { AppConfig } from '@task-scheduler/config';
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify } from 'jose';
import type { JWTPayload, JWTVerifyOptions } from 'jose';
import { isUuid } from '../common/pagination';
import { APP_CONFIG } from '../infra/tokens';
import { ROLE_PERMISSIONS } from './permissions';

type TokenRole = keyof typeof ROLE_PERMISSIONS;

export interface JwtIdentity {
  subject: string;
  tenantId: string;
  role: TokenRole;
  /** The `iss` claim, when the token has one. */
  issuer: string | null;
  /** From the `exp` claim (always present: it is required). */
  expiresAt: Date;
}

const isTokenRole = (r: unknown): r is TokenRole => typeof r === 'string' && Object.hasOwn(ROLE_PERMISSIONS, r);

/**
 * Verifies `Authorization: Bearer` tokens when JWT is configured (HS256
 * secret, or a JWKS file/URL). Verification is delegated to `jose`, with the
 * accepted algorithms pinned: `alg: none`, another algorithm, a bad signature,
 * a missing or past `exp` are all refused. Claims used: `sub`, `tenant_id`,
 * `role` (admin, operator or readonly).
 */
@Injectable()
export class JwtVerifier {
  /** Null when JWT is not configured. */
  private readonly verifyToken: ((token: string, opts: JWTVerifyOptions) => Promise<JWTPayload>) | null;
  private readonly options: JWTVerifyOptions;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    let algorithms: string[] = config.JWT_ALGORITHMS;
    if (config.JWT_HS256_SECRET) {
      const secret = new TextEncoder().encode(config.JWT_HS256_SECRET);
      algorithms = ['HS256'];
      this.verifyToken = async (t, o) => (await jwtVerify(t, secret, o)).payload;
    } else if (config.JWT_JWKS_FILE || config.JWT_JWKS_URL) {
      const keys = config.JWT_JWKS_FILE
        ? createLocalJWKSet(JSON.parse(readFileSync(config.JWT_JWKS_FILE, 'utf8')))
        : createRemoteJWKSet(new URL(config.JWT_JWKS_URL as string));
      this.verifyToken = async (t, o) => (await jwtVerify(t, keys, o)).payload;
    } else {
      this.verifyToken = null;
    }
    this.options = { algorithms, requiredClaims: ['exp', 'sub'], issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE };
  }

  get enabled(): boolean {
    return this.verifyToken !== null;
  }

  /** The identity in a valid token, or null for any invalid one (the reason is not shown to callers). */
  async verify(token: string): Promise<JwtIdentity | null> {
    if (!this.verifyToken) return null;
    let payload: JWTPayload;
    try {
      payload = await this.verifyToken(token, this.options);
    } catch {
      return null;
    }
    const { tenant_id: tenantId, role } = payload;
    if (!isUuid(tenantId) || !isTokenRole(role)) return null;
    const issuer = typeof payload.iss === 'string' ? payload.iss : null;
    return { subject: payload.sub as string, tenantId, role, issuer, expiresAt: new Date((payload.exp as number) * 1000) };
  }
}
