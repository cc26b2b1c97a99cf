import { SetMetadata, applyDecorators } from '@nestjs/common';
import { ApiPermission } from '../common/openapi';
import type { ApiKeyRole } from '@task-scheduler/db';

/** Every permission a route can require. Custom keys carry an explicit subset. */
export const PERMISSIONS = [
  'tasks:read',
  'tasks:write',
  'runs:read',
  'runs:execute',
  'schedules:read',
  'schedules:write',
  'pipelines:read',
  'pipelines:write',
  'api-keys:read',
  'api-keys:write',
  'audit:read',
  'workers:read',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

const READ: Permission[] = ['tasks:read', 'runs:read', 'schedules:read', 'pipelines:read'];
// Worker identities name hosts and processes of shared infrastructure: operators see them, read-only keys do not.
const OPERATE: Permission[] = [...READ, 'tasks:write', 'runs:execute', 'schedules:write', 'pipelines:write', 'workers:read'];

/** What each built-in role may do; `custom` keys use their own list. */
export const ROLE_PERMISSIONS: Record<Exclude<ApiKeyRole, 'custom'>, readonly Permission[]> = {
  admin: PERMISSIONS,
  operator: OPERATE,
  readonly: READ,
};

/** Tenant management; held only by the platform admin key, never grantable to a custom key. */
export const PLATFORM_PERMISSION = 'tenants:admin';

export function permissionsOf(role: ApiKeyRole, custom: string[], platformAdmin = false): ReadonlySet<string> {
  const set = new Set<string>(role === 'custom' ? custom : ROLE_PERMISSIONS[role]);
  if (platformAdmin) set.add(PLATFORM_PERMISSION);
  return set;
}

/** Marks a route that every authenticated credential may call, whatever its permissions (`GET /v1/me`). */
export const ANY_AUTHENTICATED = 'authenticated';

export const REQUIRED_PERMISSION = 'requiredPermission';
/** The permission a route needs; a key without it gets 403 FORBIDDEN naming it. The OpenAPI document states it too. */
export const RequirePermission = (permission: Permission | typeof PLATFORM_PERMISSION | typeof ANY_AUTHENTICATED) =>
  applyDecorators(SetMetadata(REQUIRED_PERMISSION, permission), ApiPermission(permission));
