import { ApiExtraModels, ApiProperty, getSchemaPath } from '@nestjs/swagger';
import { TenantShellPolicyResponse } from '../../tenants/dtos/tenant-shell-policy.dto';

/** The caller's tenant, without its limits (they have their own object). */
export class MeTenant {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ example: 'acme' }) slug!: string;
  @ApiProperty({ example: 'Acme Corp' }) name!: string;
  @ApiProperty({ enum: ['active', 'suspended'] }) status!: 'active' | 'suspended';
}

/** The API key the caller authenticated with: never its secret, never its hash. */
export class MeApiKeyPrincipal {
  @ApiProperty({ enum: ['api_key'] }) type!: 'api_key';
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ example: 'ci deploys' }) name!: string;
  @ApiProperty({ description: 'Public part of the key, e.g. tsch_1a2b3c4d5e6f.' }) prefix!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) expiresAt!: string | null;
}

/** The bearer token the caller authenticated with: its verified claims. */
export class MeTokenPrincipal {
  @ApiProperty({ enum: ['jwt'] }) type!: 'jwt';
  @ApiProperty({ description: 'The `sub` claim.' }) subject!: string;
  @ApiProperty({ type: String, nullable: true, description: 'The `iss` claim; null when the token has none.' }) issuer!: string | null;
  @ApiProperty({ format: 'date-time', description: 'The `exp` claim.' }) expiresAt!: string;
}

/** The tenant's limits, named as in the tenant resource. */
export class MeLimits {
  @ApiProperty({ type: 'integer', minimum: 1, description: 'Tasks the tenant may have at once.' }) maxTasks!: number;
  @ApiProperty({ type: 'integer', minimum: 1, description: 'Runs admitted (queued for a worker or running) at once; more wait.' })
  maxConcurrentRuns!: number;
  @ApiProperty({ type: 'integer', minimum: 1, description: 'API requests per minute for the whole tenant.' }) requestsPerMinute!: number;
  @ApiProperty({ type: 'integer', minimum: 1, description: 'API requests per minute for one API key or token subject.' })
  requestsPerMinutePerKey!: number;
  @ApiProperty({ type: TenantShellPolicyResponse }) shellPolicy!: TenantShellPolicyResponse;
}

/** Requests left in the current rate-limit window (not counting this one, already counted). */
export class MeRateLimitUsage {
  @ApiProperty({ type: 'integer', minimum: 0 }) keyRemaining!: number;
  @ApiProperty({ type: 'integer', minimum: 0 }) tenantRemaining!: number;
  @ApiProperty({ type: 'integer', example: 60 }) windowSeconds!: number;
}

/** What the tenant uses now, read when the request was answered. */
export class MeUsage {
  @ApiProperty({ type: 'integer', minimum: 0, description: 'Tasks (not deleted); compare with limits.maxTasks.' }) tasks!: number;
  @ApiProperty({ type: 'integer', minimum: 0, description: 'Schedules (not deleted).' }) schedules!: number;
  @ApiProperty({ type: 'integer', minimum: 0, description: 'Runs queued or running, admitted or not.' }) runsInFlight!: number;
  @ApiProperty({ type: 'integer', minimum: 0, description: 'Runs holding a concurrency slot; compare with limits.maxConcurrentRuns.' })
  runsAdmitted!: number;
  @ApiProperty({ type: 'integer', minimum: 0, description: 'Queued runs waiting for a free slot.' }) runsWaiting!: number;
  @ApiProperty({ type: MeRateLimitUsage }) rateLimit!: MeRateLimitUsage;
}

@ApiExtraModels(MeApiKeyPrincipal, MeTokenPrincipal)
export class MeResponse {
  @ApiProperty({ type: MeTenant }) tenant!: MeTenant;

  @ApiProperty({
    oneOf: [{ $ref: getSchemaPath(MeApiKeyPrincipal) }, { $ref: getSchemaPath(MeTokenPrincipal) }],
    discriminator: {
      propertyName: 'type',
      mapping: { api_key: getSchemaPath(MeApiKeyPrincipal), jwt: getSchemaPath(MeTokenPrincipal) },
    },
    description: 'The credential of this request.',
  })
  principal!: MeApiKeyPrincipal | MeTokenPrincipal;

  @ApiProperty({ enum: ['admin', 'operator', 'readonly', 'custom'] }) role!: 'admin' | 'operator' | 'readonly' | 'custom';

  @ApiProperty({ type: [String], example: ['tasks:read', 'runs:read'], description: 'Effective permissions, sorted.' })
  permissions!: string[];

  @ApiProperty({ description: 'The credential manages tenants (holds tenants:admin).' }) platformAdmin!: boolean;
  @ApiProperty({ type: MeLimits }) limits!: MeLimits;
  @ApiProperty({ type: MeUsage }) usage!: MeUsage;
}
