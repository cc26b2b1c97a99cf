import { ApiPropertyOptional, OmitType, PartialType } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsString, MaxLength, ValidateNested } from 'class-validator';
import { Nullable } from '../../common/validation';
import { AlertSpecDto, CreateTaskDto } from './create-task.dto';

/**
 * A PATCH of a task: every field of {@link CreateTaskDto} is optional and
 * validated by the same rules. `shell`/`http`, `alerts`, `tags` and
 * `metadata` replace the stored value whole; `retry` is merged field by field.
 * `enabled` is not here: disable and enable have their own routes. `null`
 * clears `description` and `alerts` and is refused for every other field
 * (by the validation of every field, and again by the service).
 */
export class UpdateTaskDto extends PartialType(OmitType(CreateTaskDto, ['enabled', 'description', 'alerts'] as const), {
  // Optional without letting null through (common/validation.ts): null is refused by the DTO itself.
  skipNullProperties: false,
}) {
  @ApiPropertyOptional({ maxLength: 2000, type: String, description: '`null` clears it.' })
  @Nullable()
  @IsString()
  @MaxLength(2000)
  description?: string | null;

  @ApiPropertyOptional({
    type: AlertSpecDto,
    description: "Overrides the tenant's alert settings for this task; `null` goes back to them.",
  })
  @Nullable()
  @ValidateNested()
  @Type(() => AlertSpecDto)
  alerts?: AlertSpecDto | null;
}
