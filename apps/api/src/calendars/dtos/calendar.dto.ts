import { ApiProperty, ApiPropertyOptional, OmitType, PartialType } from '@nestjs/swagger';
import type { CalendarEntity } from '@task-scheduler/db';
import { Type } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsInt, IsString, Matches, Max, MaxLength, Min, ValidateNested } from 'class-validator';
import { Optional } from '../../common/validation';
import { PageOf } from '../../common/page.dto';

const DATE = /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/;
const TIME = /^(([01]\d|2[0-3]):[0-5]\d|24:00)$/;

export class WeeklyWindowDto {
  @ApiProperty({ minimum: 0, maximum: 6, description: '0 = Sunday … 6 = Saturday', example: 0 })
  @IsInt()
  @Min(0)
  @Max(6)
  dayOfWeek!: number;

  @ApiProperty({ example: '02:00', description: 'HH:MM, in the time zone of each schedule using the calendar.' })
  @Matches(TIME, { message: 'weeklyWindows.start must be HH:MM' })
  start!: string;

  @ApiProperty({ example: '04:30', description: 'HH:MM (exclusive; 24:00 for the end of the day).' })
  @Matches(TIME, { message: 'weeklyWindows.end must be HH:MM or 24:00' })
  end!: string;
}

export class CreateCalendarDto {
  @ApiProperty({ example: 'de-holidays-2027', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' })
  @IsString()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, { message: 'name must be 1-128 letters, digits, dot, underscore or dash' })
  name!: string;

  @ApiPropertyOptional({ maxLength: 2000 }) @Optional() @IsString() @MaxLength(2000) description?: string;

  @ApiPropertyOptional({ type: [String], example: ['2027-01-01', '2027-12-25'], description: 'Whole days on which nothing fires.' })
  @Optional()
  @IsArray()
  @ArrayMaxSize(1000)
  @Matches(DATE, { each: true, message: 'holidays must be dates like 2027-12-25' })
  holidays?: string[];

  @ApiPropertyOptional({ type: [WeeklyWindowDto], description: 'Weekly windows (e.g. maintenance) in which nothing fires.' })
  @Optional()
  @IsArray()
  @ArrayMaxSize(100)
  @ValidateNested({ each: true })
  @Type(() => WeeklyWindowDto)
  weeklyWindows?: WeeklyWindowDto[];
}

/** Any of description, holidays and weekly windows; given lists replace the stored ones. */
// skipNullProperties: false makes the mapped type's fields optional without letting null through (see common/validation.ts).
export class UpdateCalendarDto extends PartialType(OmitType(CreateCalendarDto, ['name'] as const), { skipNullProperties: false }) {}

export class CalendarResponse {
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) description!: string | null;
  @ApiProperty({ type: [String] }) holidays!: string[];
  @ApiProperty({ type: [WeeklyWindowDto] }) weeklyWindows!: WeeklyWindowDto[];
  @ApiProperty() version!: number;
  @ApiPropertyOptional({ description: 'Schedules updated by this change (updates only).' }) schedulesUpdated?: number;
  @ApiProperty() createdAt!: string;
  @ApiProperty() updatedAt!: string;

  static from(c: CalendarEntity, schedulesUpdated?: number): CalendarResponse {
    return {
      id: c.id,
      name: c.name,
      description: c.description,
      holidays: c.holidays,
      weeklyWindows: c.weeklyWindows,
      version: c.version,
      ...(schedulesUpdated !== undefined ? { schedulesUpdated } : {}),
      createdAt: c.createdAt.toISOString(),
      updatedAt: c.updatedAt.toISOString(),
    };
  }
}

export const CalendarPage = PageOf(CalendarResponse);
