import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsDateString, IsIn, IsString, IsUUID, Matches, MaxLength } from 'class-validator';
import { Optional } from '../../common/validation';
import { PERMISSIONS } from '../../auth/permissions';

export const KEY_ROLES = ['admin', 'operator', 'readonly', 'custom'] as const;

export class CreateApiKeyDto {
  @ApiProperty({ example: 'ci-deployer', maxLength: 100 })
  @IsString()
  @Matches(/\S/, { message: 'name must not be blank' })
  @MaxLength(100)
  name!: string;

  @ApiProperty({ enum: KEY_ROLES, example: 'operator' })
  @IsIn(KEY_ROLES as unknown as string[], { message: `role must be one of: ${KEY_ROLES.join(', ')}` })
  role!: (typeof KEY_ROLES)[number];

  @ApiPropertyOptional({ enum: PERMISSIONS, isArray: true, description: 'Required with role custom, refused otherwise.' })
  @Optional()
  @IsArray()
  @ArrayMaxSize(PERMISSIONS.length)
  @IsIn(PERMISSIONS as unknown as string[], { each: true, message: `each permission must be one of: ${PERMISSIONS.join(', ')}` })
  permissions?: string[];

  @ApiPropertyOptional({ description: 'ISO 8601 time after which the key stops working.', example: '2027-01-01T00:00:00Z' })
  @Optional()
  @IsDateString({ strict: true }, { message: 'expiresAt must be an ISO 8601 date-time' })
  expiresAt?: string;

  @ApiPropertyOptional({ description: 'Platform admin only: the tenant the key is for (default: the caller’s).' })
  @Optional()
  @IsUUID()
  tenantId?: string;
}
