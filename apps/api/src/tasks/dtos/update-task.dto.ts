import { OmitType, PartialType } from '@nestjs/swagger';
import { CreateTaskDto } from './create-task.dto';

/**
 * A PATCH of a task: every field of {@link CreateTaskDto} is optional and
 * validated by the same rules. `shell`/`http`, `alerts`, `tags` and
 * `metadata` replace the stored value whole; `retry` is merged field by field.
 * `enabled` is not here: disable and enable have their own routes.
 */
// skipNullProperties: false: optional, but null is refused like any wrong value (common/validation.ts).
export class UpdateTaskDto extends PartialType(OmitType(CreateTaskDto, ['enabled'] as const), { skipNullProperties: false }) {}
