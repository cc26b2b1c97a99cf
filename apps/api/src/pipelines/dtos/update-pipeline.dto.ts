import { ApiPropertyOptional, OmitType, PartialType } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsString, MaxLength, ValidateNested } from 'class-validator';
import { Nullable } from '../../common/validation';
import { AlertSpecDto } from '../../tasks/dtos/create-task.dto';
import { CreatePipelineDto } from './create-pipeline.dto';

/**
 * A PATCH of a pipeline: every field of {@link CreatePipelineDto} is optional,
 * validated by the same rules, and replaces the stored value whole (`steps`
 * and `parameters` included). `null` clears `description` and `alerts` and is
 * refused for every other field.
 */
export class UpdatePipelineDto extends PartialType(OmitType(CreatePipelineDto, ['description', 'alerts'] as const), {
  skipNullProperties: false,
}) {
  @ApiPropertyOptional({ maxLength: 2000, type: String, description: '`null` clears it.' })
  @Nullable()
  @IsString()
  @MaxLength(2000)
  description?: string | null;

  @ApiPropertyOptional({
    type: AlertSpecDto,
    description: "Overrides the tenant's alert settings for this pipeline's runs; `null` goes back to them.",
  })
  @Nullable()
  @ValidateNested()
  @Type(() => AlertSpecDto)
  alerts?: AlertSpecDto | null;
}
