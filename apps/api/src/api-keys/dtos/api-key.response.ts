import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { ApiKeyEntity } from '@task-scheduler/db';
import { PageOf, isoOrNull } from '../../common/page.dto';

/** A key as listed: never the secret, never its hash. */
export class ApiKeyResponse {
  @ApiProperty() id!: string;
  @ApiProperty() tenantId!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ description: 'Public part of the key, e.g. tsch_1a2b3c4d5e6f.' }) prefix!: string;
  @ApiProperty() role!: string;
  @ApiProperty({ type: [String] }) permissions!: string[];
  @ApiPropertyOptional({ nullable: true, type: String }) expiresAt!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) revokedAt!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) lastUsedAt!: string | null;
  @ApiProperty() createdAt!: string;

  static from(k: ApiKeyEntity): ApiKeyResponse {
    return {
      id: k.id,
      tenantId: k.tenantId,
      name: k.name,
      prefix: k.prefix,
      role: k.role,
      permissions: k.permissions,
      expiresAt: isoOrNull(k.expiresAt),
      revokedAt: isoOrNull(k.revokedAt),
      lastUsedAt: isoOrNull(k.lastUsedAt),
      createdAt: k.createdAt.toISOString(),
    };
  }
}

export class CreatedApiKeyResponse extends ApiKeyResponse {
  @ApiProperty({ description: 'The full key. Shown only in this response; store it now.' }) key!: string;
}

export const ApiKeyPage = PageOf(ApiKeyResponse);
