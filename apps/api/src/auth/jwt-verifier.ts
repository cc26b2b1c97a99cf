import { readFileSync } from 'node:fs';
import { Inject, Injectable } from '@nestjs/common';
import type { AppConfig } from '@task-scheduler/config';
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify } from 'jose';
import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import { APP_CONFIG } from '../infra/tokens';

export interface JwtIdentity {
  subject: string;
  tenantId: string;
  role: 'admin' | 'operator' | 'readonly';
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ROLES = ['admin', 'operator', 'readonly'];

/**
 * Verifies `Authorization: Bearer` tokens when JWT is configured (HS256
 * secret, or a JWKS file/URL). Verification is delegated to `jose`, with the
 * accepted algorithms pinned: `alg: none`, another algorithm, a bad signature,
 * a missing or past `exp` are all refused. Claims used: `sub`, `tenant_id`,
 * `role` (admin, operator or readonly).
 */
@Injectable()
export class JwtVerifier {
  private readonly key: Uint8Array | JWTVerifyGetKey | null;
  private readonly algorithms: string[];

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {
    if (config.JWT_HS256_SECRET) {
      this.key = new TextEncoder().encode(config.JWT_HS256_SECRET);
      this.algorithms = ['HS256'];
    } else if (config.JWT_JWKS_FILE) {
      this.key = createLocalJWKSet(JSON.parse(readFileSync(config.JWT_JWKS_FILE, 'utf8')));
      this.algorithms = config.JWT_ALGORITHMS;
    } else if (config.JWT_JWKS_URL) {
      this.key = createRemoteJWKSet(new URL(config.JWT_JWKS_URL));
      this.algorithms = config.JWT_ALGORITHMS;
    } else {
      this.key = null;
      this.algorithms = [];
    }
  }

  get enabled(): boolean {
    return this.key !== null;
  }

  /** The identity in a valid token, or null for any invalid one (the reason is not shown to callers). */
  async verify(token: string): Promise<JwtIdentity | null> {
    if (!this.key) return null;
    let payload: JWTPayload;
    try {
      const opts = {
        algorithms: this.algorithms,
        requiredClaims: ['exp', 'sub'],
        issuer: this.config.JWT_ISSUER,
        audience: this.config.JWT_AUDIENCE,
      };
      payload =
        this.key instanceof Uint8Array
          ? (await jwtVerify(token, this.key, opts)).payload
          : (await jwtVerify(token, this.key, opts)).payload;
    } catch {
      return null;
    }
    const tenantId = payload.tenant_id;
    const role = payload.role;
    if (typeof tenantId !== 'string' || !UUID.test(tenantId) || typeof role !== 'string' || !ROLES.includes(role)) return null;
    return { subject: payload.sub as string, tenantId, role: role as JwtIdentity['role'] };
  }
}
