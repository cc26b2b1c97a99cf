import { ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsOptional, IsString } from 'class-validator';
import { IsEnvMap, IsHeaderMap } from '../../tasks/dtos/create-task.dto';

/** Parameters of one run, merged over the task's spec (all optional). */
export class TriggerRunDto {
  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' }, description: 'shell: variables added to the task env.' })
  @IsOptional()
  @IsEnvMap()
  env?: Record<string, string>;

  @ApiPropertyOptional({ type: [String], description: "shell: replaces the command's args." })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(1000)
  @IsString({ each: true })
  args?: string[];

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' }, description: 'http: URL placeholder values.' })
  @IsOptional()
  @IsEnvMap()
  variables?: Record<string, string>;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'string' },
    description: 'http: headers added to the task headers.',
  })
  @IsOptional()
  @IsHeaderMap()
  headers?: Record<string, string>;

  @ApiPropertyOptional({ description: 'http: replaces the request body (a string as is, anything else as JSON).' })
  @IsOptional()
  body?: unknown;
}
