import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';

export type ApiKeyRole = 'admin' | 'operator' | 'readonly' | 'custom';

@Entity({ name: 'api_keys' })
export class ApiKeyEntity {
  @PrimaryGeneratedColumn('uuid') id!: string;
  @Column('uuid', { name: 'tenant_id' }) tenantId!: string;
  @Column('text') name!: string;
  @Column('text') prefix!: string;
  /** SHA-256 of the key's secret; never leaves the database layer. */
  @Column('text', { name: 'secret_hash' }) secretHash!: string;
  @Column('text') role!: ApiKeyRole;
  @Column('text', { array: true }) permissions!: string[];
  @Column('boolean', { name: 'platform_admin' }) platformAdmin!: boolean;
  @Column('timestamptz', { name: 'expires_at', nullable: true }) expiresAt!: Date | null;
  @Column('timestamptz', { name: 'revoked_at', nullable: true }) revokedAt!: Date | null;
  @Column('timestamptz', { name: 'last_used_at', nullable: true }) lastUsedAt!: Date | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt!: Date;
}
