import { Injectable } from '@nestjs/common';
import { generateApiKey } from '@task-scheduler/core';
import { ApiKeyEntity, TenantEntity } from '@task-scheduler/db';
import { DataSource } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import { permissionsOf } from '../auth/permissions';
import type { RequestContext } from '../auth/request-context';
import { ApiError, ErrorCode } from '../common/api-error';
import { isUuid, keysetPage } from '../common/pagination';
import type { Page } from '../common/pagination';
import type { CreateApiKeyDto } from './dtos/create-api-key.dto';

/** The permissions in `wanted` that the caller does not hold: what it would gain power over. */
function beyondCaller(ctx: RequestContext, wanted: ReadonlySet<string>): string[] {
  return [...wanted].filter((p) => !ctx.permissions.has(p));
}

/** API keys of one tenant: created (secret shown once), listed, revoked. */
@Injectable()
export class ApiKeysService {
  constructor(
    private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  async create(ctx: RequestContext, dto: CreateApiKeyDto): Promise<{ entity: ApiKeyEntity; key: string }> {
    const tenantId = dto.tenantId ?? ctx.tenantId;
    if (tenantId !== ctx.tenantId && !ctx.platformAdmin) {
      throw new ApiError(ErrorCode.FORBIDDEN, 'only the platform admin may create keys for another tenant', [
        { field: 'tenantId', message: 'only the platform admin may name another tenant' },
      ]);
    }
    if (dto.role === 'custom' && !dto.permissions?.length) {
      throw new ApiError(ErrorCode.VALIDATION_FAILED, 'permissions are required when role is custom', [
        { field: 'permissions', message: 'required when role is custom' },
      ]);
    }
    if (dto.role !== 'custom' && dto.permissions !== undefined) {
      throw new ApiError(ErrorCode.VALIDATION_FAILED, 'permissions go with role custom only', [
        { field: 'permissions', message: 'only allowed with role custom' },
      ]);
    }
    if (dto.expiresAt && Date.parse(dto.expiresAt) <= Date.now()) {
      throw new ApiError(ErrorCode.VALIDATION_FAILED, 'expiresAt must be in the future', [
        { field: 'expiresAt', message: 'must be in the future' },
      ]);
    }
    // No key can mint a key that may do more than itself.
    const beyond = beyondCaller(ctx, permissionsOf(dto.role, dto.permissions ?? []));
    if (beyond.length) {
      throw new ApiError(
        ErrorCode.FORBIDDEN,
        `a key cannot grant permissions it does not hold: ${beyond.join(', ')}`,
        beyond.map((permission) => ({ field: 'permissions', message: `the caller does not hold ${permission}`, permission })),
      );
    }
    const generated = generateApiKey();
    const entity = await this.db.transaction(async (tx) => {
      if (!(await tx.getRepository(TenantEntity).existsBy({ id: tenantId }))) {
        throw new ApiError(ErrorCode.TENANT_NOT_FOUND, `tenant ${tenantId} does not exist`);
      }
      const repo = tx.getRepository(ApiKeyEntity);
      const saved = await repo.save(
        repo.create({
          tenantId,
          name: dto.name,
          prefix: generated.prefix,
          secretHash: generated.secretHash,
          role: dto.role,
          permissions: dto.role === 'custom' ? [...new Set(dto.permissions)] : [],
          platformAdmin: false,
          expiresAt: dto.expiresAt ? new Date(dto.expiresAt) : null,
          revokedAt: null,
          lastUsedAt: null,
        }),
      );
      await this.audit.record(tx, ctx, {
        action: 'api_key.create',
        targetType: 'api_key',
        targetId: saved.id,
        details: { prefix: saved.prefix, role: saved.role, tenantId },
      });
      return saved;
    });
    return { entity, key: generated.key };
  }

  list(ctx: RequestContext, limit: number, cursor?: string): Promise<Page<ApiKeyEntity>> {
    const qb = this.db.getRepository(ApiKeyEntity).createQueryBuilder('k').where('k.tenant_id = :tenantId', { tenantId: ctx.tenantId });
    return keysetPage(qb, 'k', limit, cursor);
  }

  /**
   * Revokes at once: the next request with the key gets 401. Revoking twice changes nothing.
   *
   * Bounded like {@link create}: a caller may revoke only a key that can do nothing the
   * caller cannot, i.e. every permission of the target (`tenants:admin` for a platform admin
   * key) is among the caller's; otherwise a narrow key with `api-keys:write` could take the
   * tenant's admin key away. The platform admin may revoke any key of its tenant. A key may
   * always revoke itself: giving up one's own credential escalates nothing. The check does
   * not depend on whether the target is already revoked, so the answer reveals no revocation state.
   * A refusal is 403 `FORBIDDEN` naming the missing permissions, and is audited by the error
   * filter as a failed mutation.
   */
  async revoke(ctx: RequestContext, id: string): Promise<ApiKeyEntity> {
    return this.db.transaction(async (tx) => {
      const repo = tx.getRepository(ApiKeyEntity);
      const key = isUuid(id) ? await repo.findOne({ where: { id, tenantId: ctx.tenantId }, lock: { mode: 'pessimistic_write' } }) : null;
      if (!key) throw new ApiError(ErrorCode.API_KEY_NOT_FOUND, `API key ${id} does not exist`);
      if (!ctx.platformAdmin && key.id !== ctx.apiKeyId) {
        const beyond = beyondCaller(ctx, permissionsOf(key.role, key.permissions, key.platformAdmin));
        if (beyond.length) {
          throw new ApiError(
            ErrorCode.FORBIDDEN,
            `a key cannot revoke a key with permissions it does not hold: ${beyond.join(', ')}`,
            beyond.map((permission) => ({ message: `the caller does not hold ${permission}`, permission })),
          );
        }
      }
      if (!key.revokedAt) {
        key.revokedAt = new Date();
        await repo.update({ id: key.id }, { revokedAt: key.revokedAt });
        await this.audit.record(tx, ctx, {
          action: 'api_key.revoke',
          targetType: 'api_key',
          targetId: key.id,
          details: { prefix: key.prefix },
        });
      }
      return key;
    });
  }
}
