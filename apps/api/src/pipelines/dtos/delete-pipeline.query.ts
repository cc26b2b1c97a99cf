import { IsIn } from 'class-validator';
import { Optional } from '../../common/validation';

/** `?cascade=true`: delete the schedules that start the pipeline with it. */
export class DeletePipelineQueryDto {
  @Optional()
  @IsIn(['true', 'false'], { message: 'cascade must be true or false' })
  cascade?: 'true' | 'false';
}
