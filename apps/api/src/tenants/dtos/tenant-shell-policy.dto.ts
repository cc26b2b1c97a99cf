import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsBoolean, ValidateNested } from 'class-validator';
import { Optional } from '../../common/validation';
import { ShellLimitsDto } from '../../tasks/dtos/shell-limits.dto';

/** How a tenant may use shell tasks (platform admin only). */
export class TenantShellPolicyDto {
  @ApiPropertyOptional({ default: true, description: 'Tasks may ask for network: "egress".' })
  @Optional()
  @IsBoolean()
  allowEgress?: boolean;

  @ApiPropertyOptional({
    type: ShellLimitsDto,
    description: 'Highest value a task may set for each limit; also caps the platform default.',
  })
  @Optional()
  @ValidateNested()
  @Type(() => ShellLimitsDto)
  maxLimits?: ShellLimitsDto;
}

/** A tenant's shell policy as the API shows it: every field present. */
export class TenantShellPolicyResponse {
  @ApiProperty({ description: 'Tasks may ask for network: "egress".' }) allowEgress!: boolean;
  @ApiProperty({ type: ShellLimitsDto, description: 'Caps of shell limits; an absent limit has no cap.' }) maxLimits!: ShellLimitsDto;
}
