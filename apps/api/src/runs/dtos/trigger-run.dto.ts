import { ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsDefined, IsString, MaxLength } from 'class-validator';
import { Optional } from '../../common/validation';
import { IsEnvMap, IsHeaderMap } from '../../tasks/dtos/create-task.dto';

/** Parameters of one run, merged over the task's spec (all optional). */
export class TriggerRunDto {
  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' }, description: 'shell: variables added to the task env.' })
  @Optional()
  @IsEnvMap()
  env?: Record<string, string>;

  @ApiPropertyOptional({ type: [String], description: "shell: replaces the command's args." })
  @Optional()
  @IsArray()
  @ArrayMaxSize(1000)
  @IsString({ each: true })
  @MaxLength(32_768, { each: true })
  args?: string[];

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' }, description: 'http: URL placeholder values.' })
  @Optional()
  @IsEnvMap()
  variables?: Record<string, string>;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'string' },
    description: 'http: headers added to the task headers.',
  })
  @Optional()
  @IsHeaderMap()
  headers?: Record<string, string>;

  @ApiPropertyOptional({ description: 'http: replaces the request body (a string as is, anything else as JSON).' })
  @Optional()
  @IsDefined({ message: 'body must not be null: leave it out to keep the task body; to send the JSON value null, give the string "null"' })
  body?: unknown;
}
