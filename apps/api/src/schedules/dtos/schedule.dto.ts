import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { OVERLAP_POLICIES, PIPELINE_LIMITS } from '@task-scheduler/contracts';
import type { OverlapPolicy } from '@task-scheduler/contracts';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsISO8601,
  IsString,
  IsUUID,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import { IsBoundedJsonObject, Nullable, Optional } from '../../common/validation';

const PARAMS_BOUNDS = { maxDepth: 16, maxBytes: PIPELINE_LIMITS.maxParameterBytes };

const FIELD = /^[\w*,\-/ ]{1,200}$/;

export class CalendarRuleDto {
  @ApiPropertyOptional({ example: '0', description: 'Default 0.' }) @Optional() @IsString() @Matches(FIELD) second?: string;
  @ApiPropertyOptional({ example: '30', description: 'Default 0.' }) @Optional() @IsString() @Matches(FIELD) minute?: string;
  @ApiPropertyOptional({ example: '9-17', description: 'Default 0.' }) @Optional() @IsString() @Matches(FIELD) hour?: string;
  @ApiPropertyOptional({ example: '1,15', description: 'Default *.' }) @Optional() @IsString() @Matches(FIELD) dayOfMonth?: string;
  @ApiPropertyOptional({ example: 'JAN-MAR', description: 'Default *.' }) @Optional() @IsString() @Matches(FIELD) month?: string;
  @ApiPropertyOptional({ example: '2027', description: 'Default *.' }) @Optional() @IsString() @Matches(FIELD) year?: string;
  @ApiPropertyOptional({ example: 'MON-FRI', description: 'Default *.' }) @Optional() @IsString() @Matches(FIELD) dayOfWeek?: string;
  @ApiPropertyOptional() @Optional() @IsString() @MaxLength(200) comment?: string;
}

export class IntervalRuleDto {
  @ApiProperty({ minimum: 1, example: 3600 })
  @IsInt()
  @Min(1, { message: 'intervals.everySeconds must be at least 1' })
  @Max(366 * 86_400)
  everySeconds!: number;

  @ApiPropertyOptional({ minimum: 0, example: 0, description: 'Shift within each interval (since the Unix epoch).' })
  @Optional()
  @IsInt()
  @Min(0)
  @Max(366 * 86_400)
  offsetSeconds?: number;
}

/** When a schedule fires. */
export class ScheduleSpecDto {
  @ApiPropertyOptional({ type: [String], example: ['0 2 * * *'], description: 'Cron expressions: 5 fields, or 6 with seconds first.' })
  @Optional()
  @IsArray()
  @ArrayMaxSize(20)
  @IsString({ each: true })
  @MaxLength(200, { each: true })
  cron?: string[];

  @ApiPropertyOptional({ type: [IntervalRuleDto] })
  @Optional()
  @IsArray()
  @ArrayMaxSize(20)
  @ValidateNested({ each: true })
  @Type(() => IntervalRuleDto)
  intervals?: IntervalRuleDto[];

  @ApiPropertyOptional({ type: [CalendarRuleDto] })
  @Optional()
  @IsArray()
  @ArrayMaxSize(50)
  @ValidateNested({ each: true })
  @Type(() => CalendarRuleDto)
  calendars?: CalendarRuleDto[];

  @ApiPropertyOptional({ type: [CalendarRuleDto], description: 'Calendar rules whose matches never fire.' })
  @Optional()
  @IsArray()
  @ArrayMaxSize(200)
  @ValidateNested({ each: true })
  @Type(() => CalendarRuleDto)
  exclude?: CalendarRuleDto[];

  @ApiPropertyOptional({ type: [String], description: 'Business calendars (POST /v1/calendars) whose days and windows never fire.' })
  @Optional()
  @IsArray()
  @ArrayMaxSize(20)
  @IsUUID('all', { each: true, message: 'excludeCalendarIds must be calendar ids' })
  excludeCalendarIds?: string[];

  @ApiPropertyOptional({ example: 'Europe/Berlin', description: 'IANA time zone of every rule; default UTC.' })
  @Optional()
  @IsString()
  @MaxLength(64)
  timezone?: string;

  @ApiPropertyOptional({ example: '2026-12-01T00:00:00Z' }) @Optional() @IsISO8601({ strict: true }) startAt?: string;
  @ApiPropertyOptional({ example: '2027-12-01T00:00:00Z' }) @Optional() @IsISO8601({ strict: true }) endAt?: string;

  @ApiPropertyOptional({ minimum: 0, maximum: 86400, description: 'Each fire is delayed by a random amount up to this.' })
  @Optional()
  @IsInt()
  @Min(0)
  @Max(86_400)
  jitterSeconds?: number;
}

export class SchedulePoliciesDto {
  @ApiPropertyOptional({ enum: OVERLAP_POLICIES, default: 'skip' })
  @Optional()
  @IsIn(OVERLAP_POLICIES as unknown as string[], { message: `policies.overlap must be one of: ${OVERLAP_POLICIES.join(', ')}` })
  overlap?: OverlapPolicy;

  @ApiPropertyOptional({ minimum: 10, default: 60, description: 'Fires missed by more than this are not caught up.' })
  @Optional()
  @IsInt()
  @Min(10)
  @Max(366 * 86_400)
  catchupWindowSeconds?: number;

  @ApiPropertyOptional({ default: false, description: 'Pause the schedule when a run it started fails.' })
  @Optional()
  @IsBoolean()
  pauseOnFailure?: boolean;

  @ApiPropertyOptional({ type: Number, description: 'Fire at most this many more times.' })
  @Nullable()
  @IsInt()
  @Min(0)
  @Max(1_000_000_000)
  remainingActions?: number | null;
}

export class CreateScheduleDto {
  @ApiProperty({ example: 'nightly-report', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' })
  @IsString()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, {
    message: 'name must be 1-128 characters: letters, digits, dot, underscore or dash, starting with a letter or digit',
  })
  name!: string;

  @ApiPropertyOptional({ maxLength: 2000 }) @Optional() @IsString() @MaxLength(2000) description?: string;

  @ApiPropertyOptional({ description: 'The task each fire runs. Exactly one of taskId and pipelineId.' })
  @Optional()
  @IsUUID('all', { message: 'taskId must be a task id' })
  taskId?: string;

  @ApiPropertyOptional({
    description: 'The pipeline each fire runs (its version current at the fire). Exactly one of taskId and pipelineId.',
  })
  @Optional()
  @IsUUID('all', { message: 'pipelineId must be a pipeline id' })
  pipelineId?: string;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description:
      "A pipeline schedule's run parameters, by name, checked against the pipeline's parameters. Stored as given: each fire applies the pipeline's defaults of the moment.",
    example: { date: '2026-12-01' },
  })
  @Optional()
  @IsBoundedJsonObject(PARAMS_BOUNDS)
  params?: Record<string, unknown>;

  @ApiProperty({ type: ScheduleSpecDto })
  @ValidateNested()
  @Type(() => ScheduleSpecDto)
  spec!: ScheduleSpecDto;

  @ApiPropertyOptional({ type: SchedulePoliciesDto })
  @Optional()
  @ValidateNested()
  @Type(() => SchedulePoliciesDto)
  policies?: SchedulePoliciesDto;

  @ApiPropertyOptional({ default: false }) @Optional() @IsBoolean() paused?: boolean;
  @ApiPropertyOptional({ description: 'Why it is paused.' }) @Optional() @IsString() @MaxLength(500) note?: string;
}

export class UpdateScheduleDto {
  @ApiPropertyOptional({ maxLength: 2000 }) @Optional() @IsString() @MaxLength(2000) description?: string;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description: "A pipeline schedule's run parameters, replaced whole and checked against the pipeline's parameters as they are now.",
    example: { date: '2026-12-01' },
  })
  @Optional()
  @IsBoundedJsonObject(PARAMS_BOUNDS)
  params?: Record<string, unknown>;

  @ApiPropertyOptional({ type: ScheduleSpecDto, description: 'Replaces the whole spec.' })
  @Optional()
  @ValidateNested()
  @Type(() => ScheduleSpecDto)
  spec?: ScheduleSpecDto;

  @ApiPropertyOptional({ type: SchedulePoliciesDto, description: 'Merged over the current policies.' })
  @Optional()
  @ValidateNested()
  @Type(() => SchedulePoliciesDto)
  policies?: SchedulePoliciesDto;
}

export class PauseScheduleDto {
  @ApiPropertyOptional({ example: 'maintenance until Monday' }) @Optional() @IsString() @MaxLength(500) note?: string;
}

export class TriggerScheduleDto {
  @ApiPropertyOptional({ enum: OVERLAP_POLICIES, description: "Overrides the schedule's overlap policy for this fire." })
  @Optional()
  @IsIn(OVERLAP_POLICIES as unknown as string[])
  overlap?: OverlapPolicy;
}

export class BackfillScheduleDto {
  @ApiProperty({ example: '2026-11-20T00:00:00Z' }) @IsISO8601({ strict: true }) start!: string;
  @ApiProperty({ example: '2026-11-21T00:00:00Z' }) @IsISO8601({ strict: true }) end!: string;

  @ApiPropertyOptional({
    default: true,
    description: 'Start only fires in the range that have no run (each fire has at most one run either way).',
  })
  @Optional()
  @IsBoolean()
  onlyMissing?: boolean;

  @ApiPropertyOptional({ enum: OVERLAP_POLICIES, default: 'allow_all', description: 'How backfilled fires treat each other.' })
  @Optional()
  @IsIn(OVERLAP_POLICIES as unknown as string[])
  overlap?: OverlapPolicy;
}

export class PreviewQueryDto {
  @ApiPropertyOptional({ minimum: 1, maximum: 1000, default: 10 })
  @Optional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(1000)
  count?: number;

  @ApiPropertyOptional({ description: 'Start of the preview (ISO 8601); default now.' })
  @Optional()
  @IsISO8601({ strict: true })
  from?: string;
}

export class PreviewSpecDto extends ScheduleSpecDto {}
