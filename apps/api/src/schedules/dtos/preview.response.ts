import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { DifferenceRule, PreviewFire, PreviewMissingFire, PreviewTransition, SchedulePreview } from '../schedule-preview.service';

const RULES: DifferenceRule[] = ['repeated_hour', 'skipped_hour', 'unexplained'];
const RULES_TEXT =
  '`repeated_hour`: within an hour (plus the change) of clocks going back; `skipped_hour`: of clocks going forward; ' +
  '`unexplained`: anything else (never seen in the differential test). What the engine does in each case, per zone: docs/schedules.md.';

/** One time the schedule fires, as Temporal computes it. */
export class PreviewFireResponse implements PreviewFire {
  @ApiProperty({ example: '2026-03-30T00:30:00.000Z', description: 'The instant, UTC ISO 8601.' })
  at!: string;

  @ApiProperty({ example: '2026-03-30T02:30:00+02:00', description: "The same instant on the wall clock of the schedule's time zone." })
  local!: string;

  @ApiPropertyOptional({
    enum: ['after_gap', 'repeated_hour'],
    description:
      '`after_gap`: in the hour right after clocks jumped forward (where fires shifted out of the missing hour would land). ' +
      '`repeated_hour`: its local time happens twice that day (clocks fell back); `local` tells which pass by its offset.',
  })
  dst?: 'after_gap' | 'repeated_hour';

  @ApiPropertyOptional({
    type: Boolean,
    enum: [true],
    description:
      'Set when the engine fires this local wall time twice: another fire in this preview has the same local time (a repeated hour).',
  })
  repeated?: true;

  @ApiPropertyOptional({
    enum: RULES,
    description: `Set when the engine fires here although no rule of the spec matches this local time (an engine-only fire), naming the rule that explains it. ${RULES_TEXT}`,
  })
  unmatched?: DifferenceRule;
}

/** A time the spec matches on the wall clock that the engine will not fire. */
export class PreviewMissingFireResponse implements PreviewMissingFire {
  @ApiProperty({ example: '2026-10-25T00:30:00.000Z', description: 'The instant, UTC ISO 8601.' }) at!: string;
  @ApiProperty({ example: '2026-10-25T02:30:00+02:00', description: "On the wall clock of the schedule's time zone." }) local!: string;
  @ApiProperty({ enum: RULES, example: 'repeated_hour', description: RULES_TEXT }) rule!: DifferenceRule;
}

/** A change of the zone's UTC offset between `from` and the last fire, and what it did to this schedule. */
export class PreviewTransitionResponse implements PreviewTransition {
  @ApiProperty({ example: '2026-10-25T01:00:00.000Z', description: 'The first instant with the new offset.' }) at!: string;

  @ApiProperty({
    enum: ['gap', 'overlap'],
    description: '`gap`: local times in [localStart, localEnd) do not exist that day. `overlap`: they happen twice.',
  })
  kind!: 'gap' | 'overlap';

  @ApiProperty({ example: '+02:00' }) offsetBefore!: string;
  @ApiProperty({ example: '+01:00' }) offsetAfter!: string;
  @ApiProperty({ example: '2026-10-25T02:00', description: 'Local wall time the affected range starts at.' }) localStart!: string;
  @ApiProperty({ example: '2026-10-25T03:00', description: 'Local wall time the affected range ends at (exclusive).' }) localEnd!: string;

  @ApiProperty({
    example:
      'Clocks fall back from 03:00 to 02:00 (+02:00 → +01:00) at 2026-10-25T01:00:00.000Z; local 02:00–03:00 on 2026-10-25 happens twice. ' +
      'Fired once, only in the second pass: at 2026-10-25T02:30:00+01:00 (as on 2026-10-18 the schedule fires at 02:30 in that hour).',
    description: "What the change does to this schedule, read from the fires Temporal computed (compared with a nearby ordinary day's).",
  })
  effect!: string;
}

/** The next fire times of a schedule, with the daylight-saving changes they cross. */
export class SchedulePreviewResponse implements SchedulePreview {
  @ApiProperty({ example: 'Europe/Berlin' }) timezone!: string;
  @ApiProperty({ example: '2026-03-25T00:00:00.000Z', description: 'Fires at or after this instant are listed.' }) from!: string;
  @ApiProperty({ type: [PreviewFireResponse] }) fires!: PreviewFireResponse[];

  @ApiProperty({ type: [PreviewTransitionResponse], description: 'Offset changes between `from` and the last fire listed.' })
  dstTransitions!: PreviewTransitionResponse[];

  @ApiProperty({
    description:
      "Whether `fires` were compared with the spec's own wall-clock matches (POSIX reading: a time matches when its local reading does). " +
      'False with `jitterSeconds` (fires are shifted at random), so `unmatched` and `missing` are then not computed.',
  })
  compared!: boolean;

  @ApiProperty({
    type: [PreviewMissingFireResponse],
    description:
      'Times between `from` and the last fire listed that the spec matches on the wall clock but the engine will not fire (e.g. one pass of a repeated hour).',
  })
  missing!: PreviewMissingFireResponse[];
}
