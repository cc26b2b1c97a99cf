import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { EXECUTORS } from '@task-scheduler/contracts';
import type { ExecutorKind } from '@task-scheduler/contracts';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
  registerDecorator,
} from 'class-validator';
import type { ValidationOptions } from 'class-validator';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** An object of environment variables: names like shell identifiers, values strings. */
function IsEnvMap(options?: ValidationOptions) {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isEnvMap',
      target: target.constructor,
      propertyName,
      options: { message: `${propertyName} must map variable names ([A-Za-z_][A-Za-z0-9_]*) to string values`, ...options },
      validator: {
        validate: (v: unknown) =>
          typeof v === 'object' &&
          v !== null &&
          !Array.isArray(v) &&
          Object.keys(v).length <= 200 &&
          Object.entries(v).every(([k, val]) => ENV_NAME.test(k) && typeof val === 'string' && val.length <= 32_768),
      },
    });
}

/** An optional list of process exit codes (0-255). */
function IsExitCodeList() {
  return applyDecorators(
    IsOptional(),
    IsArray(),
    ArrayMaxSize(256),
    IsInt({ each: true }),
    Min(0, { each: true }),
    Max(255, { each: true }),
  );
}

export class ShellSpecDto {
  @ApiPropertyOptional({ description: 'Program to run, looked up on PATH. Give either command or script.', example: 'echo' })
  @IsOptional()
  @IsString()
  @Matches(/\S/, { message: 'shell.command must not be blank' })
  @MaxLength(4096)
  command?: string;

  @ApiPropertyOptional({ type: [String], example: ['hello'] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(1000)
  @IsString({ each: true })
  args?: string[];

  @ApiPropertyOptional({ description: 'Script run with /bin/sh -c. Give either command or script.', example: 'echo hello' })
  @IsOptional()
  @IsString()
  @Matches(/\S/, { message: 'shell.script must not be blank' })
  @MaxLength(65_536)
  script?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' }, example: { GREETING: 'hi' } })
  @IsOptional()
  @IsEnvMap()
  env?: Record<string, string>;

  @ApiPropertyOptional({ type: [Number], description: 'Exit codes that count as success (default [0]).', example: [0] })
  @IsExitCodeList()
  allowedExitCodes?: number[];
}

export class RetryDto {
  @ApiPropertyOptional({ description: 'Total attempts including the first (1 = no retry).', minimum: 1, maximum: 100, default: 3 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(100)
  maximumAttempts?: number;

  @ApiPropertyOptional({ minimum: 0.1, maximum: 3600, default: 1 })
  @IsOptional()
  @IsNumber()
  @Min(0.1)
  @Max(3600)
  initialIntervalSeconds?: number;

  @ApiPropertyOptional({ minimum: 1, maximum: 10, default: 2 })
  @IsOptional()
  @IsNumber()
  @Min(1)
  @Max(10)
  backoffCoefficient?: number;

  @ApiPropertyOptional({ minimum: 0.1, maximum: 86400, default: 60 })
  @IsOptional()
  @IsNumber()
  @Min(0.1)
  @Max(86_400)
  maximumIntervalSeconds?: number;

  @ApiPropertyOptional({ type: [Number], description: 'Exit codes after which the run fails without further attempts.' })
  @IsExitCodeList()
  nonRetryableExitCodes?: number[];
}

export class CreateTaskDto {
  @ApiProperty({ description: 'Unique per tenant.', example: 'hello', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' })
  @IsString()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, {
    message: 'name must be 1-128 characters: letters, digits, dot, underscore or dash, starting with a letter or digit',
  })
  name!: string;

  @ApiPropertyOptional({ maxLength: 2000 })
  @IsOptional()
  @IsString()
  @MaxLength(2000)
  description?: string;

  @ApiProperty({ enum: EXECUTORS, example: 'shell' })
  @IsIn(EXECUTORS as unknown as string[], { message: `executor must be one of: ${EXECUTORS.join(', ')}` })
  executor!: ExecutorKind;

  @ApiPropertyOptional({ type: ShellSpecDto, description: 'Required when executor is shell.' })
  @IsOptional()
  @ValidateNested()
  @Type(() => ShellSpecDto)
  shell?: ShellSpecDto;

  @ApiPropertyOptional({ description: 'Per-attempt time limit in seconds.', minimum: 1, maximum: 86400, default: 3600 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(86_400)
  timeoutSeconds?: number;

  @ApiPropertyOptional({ type: RetryDto })
  @IsOptional()
  @ValidateNested()
  @Type(() => RetryDto)
  retry?: RetryDto;

  @ApiPropertyOptional({ minimum: -100, maximum: 100, default: 0 })
  @IsOptional()
  @IsInt()
  @Min(-100)
  @Max(100)
  priority?: number;

  @ApiPropertyOptional({ type: [String] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(50)
  @IsString({ each: true })
  @MaxLength(64, { each: true })
  tags?: string[];

  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  @IsOptional()
  @IsObject()
  metadata?: Record<string, unknown>;

  @ApiPropertyOptional({ default: true })
  @IsOptional()
  @IsBoolean()
  enabled?: boolean;
}
