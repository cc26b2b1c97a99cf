import { createParamDecorator } from '@nestjs/common';
import type { ExecutionContext } from '@nestjs/common';
import type { ApiKeyRole } from '@task-scheduler/db';

/**
 * Who is calling, derived from the credential only. Every service method takes
 * it first, so every query is scoped to `tenantId`.
 */
export interface RequestContext {
  tenantId: string;
  /** Null when the caller authenticated with a JWT. */
  apiKeyId: string | null;
  /** `key:<prefix>` or `jwt:<subject>`. */
  actor: string;
  /** The verified bearer token's identity; null when the caller used an API key. */
  token: { subject: string; issuer: string | null; expiresAt: Date } | null;
  role: ApiKeyRole;
  permissions: ReadonlySet<string>;
  platformAdmin: boolean;
  requestId: string;
}

export interface AuthenticatedRequest {
  id: string;
  auth?: RequestContext;
}

export const Ctx = createParamDecorator((_: unknown, host: ExecutionContext): RequestContext => {
  const req = host.switchToHttp().getRequest<AuthenticatedRequest>();
  if (!req.auth) throw new Error('route reached without authentication');
  return req.auth;
});

/** `METHOD /path` without the query string, as the audit log names a route. */
export function routeOf(req: { method: string; originalUrl: string }): string {
  return `${req.method} ${req.originalUrl.split('?')[0]}`;
}
