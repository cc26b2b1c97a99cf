import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { FAILURE_POLICIES, PARAMETER_NAME_PATTERN, PIPELINE_LIMITS, TRIGGER_RULES } from '@task-scheduler/contracts';
import type { FailurePolicy, TriggerRule } from '@task-scheduler/contracts';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayUnique,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
  registerDecorator,
} from 'class-validator';
import { Nullable, Optional } from '../../common/validation';
import { TriggerRunDto } from '../../runs/dtos/trigger-run.dto';
import { AlertSpecDto } from '../../tasks/dtos/create-task.dto';

/** A `forEach`: a literal list, or a string holding one `{{ expression }}` that evaluates to a list. */
function IsListOrTemplate(): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'isListOrTemplate',
      target: target.constructor,
      propertyName: propertyName as string,
      validator: {
        validate: (v: unknown) => Array.isArray(v) || (typeof v === 'string' && v.length <= PIPELINE_LIMITS.maxExpressionLength + 4),
        defaultMessage: (args) =>
          `${args?.property} must be a list, or a string with one {{ expression }} (at most ${PIPELINE_LIMITS.maxExpressionLength} characters) that gives a list`,
      },
    });
}

/** JSON of at most `maxBytes` (a parameter's default). */
function IsSmallJson(maxBytes: number): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'isSmallJson',
      target: target.constructor,
      propertyName: propertyName as string,
      validator: {
        validate: (v: unknown) => v !== null && Buffer.byteLength(JSON.stringify(v) ?? '') <= maxBytes,
        defaultMessage: (args) => `${args?.property} must be a JSON value other than null, at most ${maxBytes} bytes long`,
      },
    });
}

export class PipelineParameterDto {
  @ApiProperty({ description: 'Read in expressions as `params.<name>`.', example: 'date', pattern: PARAMETER_NAME_PATTERN.source })
  @IsString()
  @Matches(PARAMETER_NAME_PATTERN, {
    message: 'parameter names must start with a letter or _ and hold only letters, digits and _ (at most 63)',
  })
  name!: string;

  @ApiPropertyOptional({ maxLength: 2000, example: 'The day to process (YYYY-MM-DD)' })
  @Optional()
  @IsString()
  @MaxLength(2000)
  description?: string;

  @ApiPropertyOptional({ description: 'Whether a run must give it; default: true when it has no default.' })
  @Optional()
  @IsBoolean()
  required?: boolean;

  @ApiPropertyOptional({
    description: 'Any JSON value but null, used when a run does not give the parameter.',
    anyOf: [
      { type: 'string' },
      { type: 'number', format: 'double' },
      { type: 'boolean' },
      { type: 'object', additionalProperties: true },
      { type: 'array', items: {} },
    ],
    example: '2026-12-01',
  })
  @Optional()
  @IsSmallJson(PIPELINE_LIMITS.maxParameterBytes)
  default?: unknown;
}

export class PipelineStepDto {
  @ApiProperty({
    description: 'Names the step in dependsOn and expressions (`steps.<key>`): a-z, 0-9 and _, starting with a letter.',
    example: 'extract',
    maxLength: 63,
  })
  @IsString()
  @MaxLength(256)
  key!: string;

  @ApiProperty({ description: 'The task the step runs: its id, or its name in this tenant.', example: 'examples-target' })
  @IsString()
  @MaxLength(256)
  task!: string;

  @ApiPropertyOptional({
    type: TriggerRunDto,
    description:
      'Parameters of the step’s run, as for a task run; string values may hold `{{ expression }}` templates over steps, params and (in a forEach step) item and itemIndex.',
  })
  @Optional()
  @ValidateNested()
  @Type(() => TriggerRunDto)
  overrides?: TriggerRunDto;

  @ApiPropertyOptional({ type: [String], description: 'Keys of the steps this one waits for.', example: [] })
  @Optional()
  @IsArray()
  @ArrayMaxSize(2 * PIPELINE_LIMITS.maxDependsOn)
  @IsString({ each: true })
  @MaxLength(64, { each: true })
  dependsOn?: string[];

  @ApiPropertyOptional({ enum: TRIGGER_RULES, default: 'all_success', description: 'When the step runs, over its upstream outcomes.' })
  @Optional()
  @IsIn(TRIGGER_RULES as unknown as string[], { message: `triggerRule must be one of: ${TRIGGER_RULES.join(', ')}` })
  triggerRule?: TriggerRule;

  @ApiPropertyOptional({ description: 'CEL over steps and params; false skips the step.', example: 'steps.extract.outputs.count > 0' })
  @Optional()
  @IsString()
  @MaxLength(PIPELINE_LIMITS.maxExpressionLength)
  when?: string;

  @ApiPropertyOptional({
    description: `Run the step once per item: a list (at most ${PIPELINE_LIMITS.maxItemsPerStep} items) or one \`{{ expression }}\` giving a list.`,
    oneOf: [{ type: 'array', items: {} }, { type: 'string' }],
  })
  @Optional()
  @IsListOrTemplate()
  forEach?: unknown[] | string;
}

export class CreatePipelineDto {
  @ApiProperty({ description: 'Unique per tenant.', example: 'nightly-etl', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' })
  @IsString()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, {
    message: 'name must be 1-128 characters: letters, digits, dot, underscore or dash, starting with a letter or digit',
  })
  name!: string;

  @ApiPropertyOptional({ maxLength: 2000 })
  @Optional()
  @IsString()
  @MaxLength(2000)
  description?: string;

  @ApiPropertyOptional({ type: [PipelineParameterDto], description: `At most ${PIPELINE_LIMITS.maxParameters}, names unique.` })
  @Optional()
  @IsArray()
  @ArrayMaxSize(PIPELINE_LIMITS.maxParameters)
  @ArrayUnique((p: PipelineParameterDto) => p?.name, { message: 'parameters must have unique names' })
  @ValidateNested({ each: true })
  @Type(() => PipelineParameterDto)
  parameters?: PipelineParameterDto[];

  // No array bound of its own: the body limit bounds it, and more than maxSteps is a PIPELINE_INVALID problem
  // (too_many_steps) reported with the others rather than a 400 alone.
  @ApiProperty({ type: [PipelineStepDto], description: `1 to ${PIPELINE_LIMITS.maxSteps} steps.` })
  @IsArray()
  @ValidateNested({ each: true })
  @Type(() => PipelineStepDto)
  steps!: PipelineStepDto[];

  @ApiPropertyOptional({
    description: 'Step runs (over all steps and items) running at once.',
    minimum: 1,
    maximum: PIPELINE_LIMITS.maxParallelism,
    default: PIPELINE_LIMITS.defaultParallelism,
  })
  @Optional()
  @IsInt()
  @Min(1)
  @Max(PIPELINE_LIMITS.maxParallelism)
  maxParallelism?: number;

  @ApiPropertyOptional({
    enum: FAILURE_POLICIES,
    default: 'fail_fast',
    description:
      'fail_fast: after a failure, cancel running steps and skip the rest (failure-aware rules still run). continue: run every step whose rule holds.',
  })
  @Optional()
  @IsIn(FAILURE_POLICIES as unknown as string[], { message: `failurePolicy must be one of: ${FAILURE_POLICIES.join(', ')}` })
  failurePolicy?: FailurePolicy;

  @ApiPropertyOptional({
    type: AlertSpecDto,
    description: "Overrides the tenant's alert settings for this pipeline's runs; `null`: the tenant's.",
  })
  @Nullable()
  @ValidateNested()
  @Type(() => AlertSpecDto)
  alerts?: AlertSpecDto | null;
}
