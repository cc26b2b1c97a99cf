import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { EXECUTORS, HTTP_METHODS, SHELL_NETWORKS } from '@task-scheduler/contracts';
import type { ExecutorKind, HttpMethod, ShellNetwork } from '@task-scheduler/contracts';
import { RESERVED_SANDBOX_PATHS, isUsableWorkDir } from '@task-scheduler/core';
import { ShellLimitsDto } from './shell-limits.dto';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  ArrayMinSize,
  IsBoolean,
  IsDefined,
  IsIn,
  IsInt,
  IsNumber,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  IsUrl,
  ValidateNested,
  registerDecorator,
} from 'class-validator';
import { IsBoundedJsonObject, Optional } from '../../common/validation';

/** Metadata is for labels and small facts, not documents: bounded so every client can read it back. */
export const METADATA_BOUNDS = { maxDepth: 8, maxBytes: 16_384 };
import type { ValidationOptions } from 'class-validator';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** RFC 9110 token characters. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/;

/** An object of string values whose keys match `key` (env variable or header names). */
function IsStringMap(key: RegExp, what: string, options?: ValidationOptions) {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isStringMap',
      target: target.constructor,
      propertyName,
      options: { message: `${propertyName} must map ${what} to string values`, ...options },
      validator: {
        validate: (v: unknown) =>
          typeof v === 'object' &&
          v !== null &&
          !Array.isArray(v) &&
          Object.keys(v).length <= 200 &&
          Object.entries(v).every(([k, val]) => key.test(k) && typeof val === 'string' && val.length <= 32_768 && !/[\r\n\0]/.test(val)),
      },
    });
}

/**
 * A URL without `user:password@`: credentials in a URL would be stored and shown in clear with the
 * task (use secretHeaders), and `user@host` is a known way to disguise the real destination.
 */
function NoUrlCredentials(options?: ValidationOptions) {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'noUrlCredentials',
      target: target.constructor,
      propertyName,
      options: { message: `${propertyName} must not carry credentials (user:password@); put them in secretHeaders`, ...options },
      validator: {
        validate: (v: unknown) => {
          if (typeof v !== 'string') return true;
          try {
            const u = new URL(v);
            return u.username === '' && u.password === '';
          } catch {
            return true; // unparsable until its placeholders are filled; the URL pattern check reports real problems
          }
        },
      },
    });
}

/** Environment variables: names like shell identifiers, values strings. */
export const IsEnvMap = (options?: ValidationOptions) => IsStringMap(ENV_NAME, 'variable names ([A-Za-z_][A-Za-z0-9_]*)', options);
/** HTTP headers: token names, single-line values. */
export const IsHeaderMap = (options?: ValidationOptions) => IsStringMap(HEADER_NAME, 'header names', options);

/** An optional list of process exit codes (0-255). */
function IsExitCodeList() {
  return applyDecorators(Optional(), IsArray(), ArrayMaxSize(256), IsInt({ each: true }), Min(0, { each: true }), Max(255, { each: true }));
}

export class ShellSpecDto {
  @ApiPropertyOptional({ description: 'Program to run, looked up on PATH. Give either command or script.', example: 'echo' })
  @Optional()
  @IsString()
  @Matches(/\S/, { message: 'shell.command must not be blank' })
  @MaxLength(4096)
  command?: string;

  @ApiPropertyOptional({ type: [String], example: ['hello'] })
  @Optional()
  @IsArray()
  @ArrayMaxSize(1000)
  @IsString({ each: true })
  @MaxLength(32_768, { each: true })
  args?: string[];

  @ApiPropertyOptional({ description: 'Script run with /bin/sh -c. Give either command or script.', example: 'echo hello' })
  @Optional()
  @IsString()
  @Matches(/\S/, { message: 'shell.script must not be blank' })
  @MaxLength(65_536)
  script?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' }, example: { GREETING: 'hi' } })
  @Optional()
  @IsEnvMap()
  env?: Record<string, string>;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'string' },
    description: 'Secret variables: stored encrypted, shown as *** everywhere, masked as *** in captured output.',
    example: { API_TOKEN: 's3cr3t' },
  })
  @Optional()
  @IsEnvMap()
  secretEnv?: Record<string, string>;

  @ApiPropertyOptional({ type: [Number], description: 'Exit codes that count as success (default [0]).', example: [0] })
  @IsExitCodeList()
  allowedExitCodes?: number[];

  @ApiPropertyOptional({
    description:
      "Where the attempt's private, empty working directory appears inside its sandbox (default /work); not under /usr, /etc, /proc, /dev, /tmp, /sys or /bin, /sbin, /lib*.",
    example: '/work',
  })
  @Optional()
  @IsString()
  @MaxLength(1024)
  @IsWorkDir()
  workingDirectory?: string;

  @ApiPropertyOptional({
    enum: SHELL_NETWORKS,
    default: 'none',
    description:
      'none: no network at all. egress: public addresses only (no loopback, private, link-local or metadata ranges, no address of the worker host).',
  })
  @Optional()
  @IsIn(SHELL_NETWORKS as unknown as string[], { message: `shell.network must be one of: ${SHELL_NETWORKS.join(', ')}` })
  network?: ShellNetwork;

  @ApiPropertyOptional({
    type: ShellLimitsDto,
    description: "Limits of each attempt; unset ones take the platform defaults; all within the tenant's caps.",
  })
  @Optional()
  @ValidateNested()
  @Type(() => ShellLimitsDto)
  limits?: ShellLimitsDto;
}

function IsWorkDir(): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'isWorkDir',
      target: target.constructor,
      propertyName: propertyName as string,
      validator: {
        validate: (v: unknown) => typeof v === 'string' && isUsableWorkDir(v),
        defaultMessage: () =>
          `shell.workingDirectory must be an absolute path without . or .. segments, not under ${RESERVED_SANDBOX_PATHS.join(', ')}`,
      },
    });
}

export class HttpSpecDto {
  @ApiProperty({ enum: HTTP_METHODS, example: 'POST' })
  @IsIn(HTTP_METHODS as unknown as string[], { message: `http.method must be one of: ${HTTP_METHODS.join(', ')}` })
  method!: HttpMethod;

  @ApiProperty({
    description: 'http(s) URL; {name} placeholders are filled from variables.',
    example: 'https://api.example.com/items/{id}',
  })
  @IsString()
  @Matches(/^https?:\/\/[^\s]+$/i, { message: 'http.url must be an http:// or https:// URL' })
  @NoUrlCredentials()
  @MaxLength(8192)
  url!: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' } })
  @Optional()
  @IsHeaderMap()
  headers?: Record<string, string>;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'string' },
    description: 'Secret headers (e.g. Authorization): stored encrypted, shown as ***.',
  })
  @Optional()
  @IsHeaderMap()
  secretHeaders?: Record<string, string>;

  @ApiPropertyOptional({ description: 'A string is sent as is; anything else as JSON.' })
  @Optional()
  // The executor sends no body for null (activities/src/http): refused rather than silently dropped.
  @IsDefined({
    message: 'http.body must not be null: leave it out for no body; to send the JSON value null, give the string "null" and a content-type: application/json header',
  })
  body?: unknown;

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' }, description: 'Default values of URL placeholders.' })
  @Optional()
  @IsEnvMap()
  variables?: Record<string, string>;

  @ApiPropertyOptional({ type: [Number], description: 'Status codes that count as success (default 200-299).' })
  @Optional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(100)
  @IsInt({ each: true })
  @Min(100, { each: true })
  @Max(599, { each: true })
  expectedStatus?: number[];
}

export class AlertSpecDto {
  @ApiProperty({ description: 'Webhook called with the run summary on final failure.', example: 'https://alerts.example.com/hook' })
  @IsDefined()
  @IsUrl({ protocols: ['http', 'https'], require_protocol: true, require_tld: false }, { message: 'webhookUrl must be an http(s) URL' })
  @NoUrlCredentials()
  webhookUrl!: string;

  @ApiPropertyOptional({ description: 'Also call when the task succeeds again after an alerted failure.', default: false })
  @Optional()
  @IsBoolean()
  onRecovery?: boolean;

  @ApiPropertyOptional({ description: 'Further failures within this many seconds after an alert are counted, not sent.', default: 3600 })
  @Optional()
  @IsInt()
  @Min(0)
  @Max(7 * 86_400)
  windowSeconds?: number;
}

export class RetryDto {
  @ApiPropertyOptional({ description: 'Total attempts including the first (1 = no retry).', minimum: 1, maximum: 100, default: 3 })
  @Optional()
  @IsInt()
  @Min(1)
  @Max(100)
  maximumAttempts?: number;

  @ApiPropertyOptional({ minimum: 0.1, maximum: 3600, default: 1 })
  @Optional()
  @IsNumber()
  @Min(0.1)
  @Max(3600)
  initialIntervalSeconds?: number;

  @ApiPropertyOptional({ minimum: 1, maximum: 10, default: 2 })
  @Optional()
  @IsNumber()
  @Min(1)
  @Max(10)
  backoffCoefficient?: number;

  @ApiPropertyOptional({ minimum: 0.1, maximum: 86400, default: 60 })
  @Optional()
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
  @Optional()
  @IsString()
  @MaxLength(2000)
  description?: string;

  @ApiProperty({ enum: EXECUTORS, example: 'shell' })
  @IsIn(EXECUTORS as unknown as string[], { message: `executor must be one of: ${EXECUTORS.join(', ')}` })
  executor!: ExecutorKind;

  @ApiPropertyOptional({ type: ShellSpecDto, description: 'Required when executor is shell.' })
  @Optional()
  @ValidateNested()
  @Type(() => ShellSpecDto)
  shell?: ShellSpecDto;

  @ApiPropertyOptional({ type: HttpSpecDto, description: 'Required when executor is http.' })
  @Optional()
  @ValidateNested()
  @Type(() => HttpSpecDto)
  http?: HttpSpecDto;

  @ApiPropertyOptional({
    description: 'Run N shards in parallel, each told SHARD_INDEX/SHARD_TOTAL.',
    minimum: 1,
    maximum: 100,
    default: 1,
  })
  @Optional()
  @IsInt()
  @Min(1)
  @Max(100)
  shardCount?: number;

  @ApiPropertyOptional({ type: AlertSpecDto, description: "Overrides the tenant's alert settings for this task." })
  @Optional()
  @ValidateNested()
  @Type(() => AlertSpecDto)
  alerts?: AlertSpecDto;

  @ApiPropertyOptional({ description: 'Per-attempt time limit in seconds.', minimum: 1, maximum: 86400, default: 3600 })
  @Optional()
  @IsInt()
  @Min(1)
  @Max(86_400)
  timeoutSeconds?: number;

  @ApiPropertyOptional({ type: RetryDto })
  @Optional()
  @ValidateNested()
  @Type(() => RetryDto)
  retry?: RetryDto;

  @ApiPropertyOptional({ minimum: -100, maximum: 100, default: 0 })
  @Optional()
  @IsInt()
  @Min(-100)
  @Max(100)
  priority?: number;

  @ApiPropertyOptional({ type: [String] })
  @Optional()
  @IsArray()
  @ArrayMaxSize(50)
  @IsString({ each: true })
  @MaxLength(64, { each: true })
  tags?: string[];

  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  @Optional()
  @IsBoundedJsonObject(METADATA_BOUNDS)
  metadata?: Record<string, unknown>;

  @ApiPropertyOptional({ default: true })
  @Optional()
  @IsBoolean()
  enabled?: boolean;
}
