import { IsIn } from 'class-validator';
import { Optional } from '../../common/validation';

/** `?cascade=true`: delete the schedules that use the task with it. */
export class DeleteTaskQueryDto {
  @Optional()
  @IsIn(['true', 'false'], { message: 'cascade must be true or false' })
  cascade?: 'true' | 'false';
}
