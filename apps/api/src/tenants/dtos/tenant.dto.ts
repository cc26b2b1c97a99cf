import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { TenantEntity } from '@task-scheduler/db';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsString, Matches, Max, MaxLength, Min, ValidateNested } from 'class-validator';
import { Nullable, Optional } from '../../common/validation';
import { PageOf } from '../../common/page.dto';
import { TenantShellPolicyDto, TenantShellPolicyResponse } from './tenant-shell-policy.dto';

export class TenantLimitsDto {
  @ApiPropertyOptional({ minimum: 1, maximum: 100000, default: 100 })
  @Optional()
  @IsInt()
  @Min(1)
  @Max(100_000)
  maxConcurrentRuns?: number;

  @ApiPropertyOptional({ minimum: 1, maximum: 1000000, default: 1000 })
  @Optional()
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  maxTasks?: number;

  @ApiPropertyOptional({ minimum: 1, maximum: 1000000, default: 600, description: 'API requests per minute for the whole tenant.' })
  @Optional()
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  requestsPerMinute?: number;
}

export class CreateTenantDto {
  @ApiProperty({ example: 'acme', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' })
  @IsString()
  @Matches(/^[a-z0-9][a-z0-9-]{0,62}$/, {
    message: 'slug must be 1-63 lower-case letters, digits or dashes, starting with a letter or digit',
  })
  slug!: string;

  @ApiProperty({ example: 'Acme Corp' })
  @IsString()
  @Matches(/\S/, { message: 'name must not be blank' })
  @MaxLength(200)
  name!: string;

  @ApiPropertyOptional({ type: TenantLimitsDto })
  @Optional()
  @ValidateNested()
  @Type(() => TenantLimitsDto)
  limits?: TenantLimitsDto;

  @ApiPropertyOptional({ type: TenantShellPolicyDto, description: "Egress and caps of shell limits for the tenant's tasks." })
  @Optional()
  @ValidateNested()
  @Type(() => TenantShellPolicyDto)
  shellPolicy?: TenantShellPolicyDto;
}

export class UpdateTenantDto {
  @ApiPropertyOptional()
  @Optional()
  @IsString()
  @Matches(/\S/, { message: 'name must not be blank' })
  @MaxLength(200)
  name?: string;

  @ApiPropertyOptional({
    enum: ['active', 'suspended'],
    description: 'Suspending makes the tenant’s keys answer 403 TENANT_SUSPENDED at once.',
  })
  @Optional()
  @IsIn(['active', 'suspended'], { message: 'status must be active or suspended' })
  status?: 'active' | 'suspended';

  @ApiPropertyOptional({ type: TenantLimitsDto })
  @Optional()
  @ValidateNested()
  @Type(() => TenantLimitsDto)
  limits?: TenantLimitsDto;

  @ApiPropertyOptional({
    type: TenantShellPolicyDto,
    description: 'Replaces the shell policy. Applies to new tasks at create and to every run from its trigger on.',
  })
  @Optional()
  @ValidateNested()
  @Type(() => TenantShellPolicyDto)
  shellPolicy?: TenantShellPolicyDto;

  @ApiPropertyOptional({
    type: 'integer',
    minimum: 1,
    maximum: 3650,
    description:
      'Days finished runs, pipeline runs and audit events are kept before retention deletes them (docs/retention.md); ' +
      "null: the platform's RETENTION_DAYS.",
  })
  @Nullable()
  @IsInt()
  @Min(1)
  @Max(3650)
  retentionDays?: number | null;
}

export class TenantResponse {
  @ApiProperty() id!: string;
  @ApiProperty() slug!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ enum: ['active', 'suspended'] }) status!: string;
  @ApiProperty({ type: TenantLimitsDto }) limits!: Required<TenantLimitsDto>;
  @ApiProperty({ type: TenantShellPolicyResponse }) shellPolicy!: TenantShellPolicyResponse;
  @ApiProperty({
    type: 'integer',
    nullable: true,
    description: "The tenant's own retention in days; null: the platform's RETENTION_DAYS (0 there: kept forever).",
  })
  retentionDays!: number | null;
  @ApiProperty() createdAt!: string;
  @ApiProperty() updatedAt!: string;

  static from(t: TenantEntity): TenantResponse {
    return {
      id: t.id,
      slug: t.slug,
      name: t.name,
      status: t.status,
      limits: { maxConcurrentRuns: t.maxConcurrentRuns, maxTasks: t.maxTasks, requestsPerMinute: t.rateLimitPerMinute },
      shellPolicy: { allowEgress: t.shellPolicy?.allowEgress ?? true, maxLimits: t.shellPolicy?.maxLimits ?? {} },
      retentionDays: t.retentionDays ?? null,
      createdAt: t.createdAt.toISOString(),
      updatedAt: t.updatedAt.toISOString(),
    };
  }
}

export const TenantPage = PageOf(TenantResponse);
