import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { SchedulePolicyInput, ScheduleSpecInput } from '@task-scheduler/contracts';
import { localIsoString } from '@task-scheduler/core';
import type { ScheduleEntity } from '@task-scheduler/db';
import { PageOf, isoOrNull } from '../../common/page.dto';
import { FIRE_REASONS } from '../fire-classification';
import type { FireRecord } from '../fire-classification';
import type { LastFire } from '../schedule-runs';
import type { ScheduleLiveState } from '../schedules.service';

export class FireTimeResponse {
  @ApiProperty({ example: '2026-11-24T01:00:00.000Z' }) at!: string;
  @ApiProperty({ example: '2026-11-24T02:00:00+01:00', description: "In the schedule's time zone." }) local!: string;
}

export class ScheduleStatsResponse {
  @ApiProperty() actionsTaken!: number;
  @ApiProperty({ description: 'Fires skipped because a run was still going (overlap skip).' }) skippedOverlap!: number;
  @ApiProperty({ description: 'Fires missed by more than the catch-up window.' }) missedCatchupWindow!: number;
  @ApiProperty({ description: 'Runs of this schedule going now.' }) running!: number;
}

export class LastRunResponse {
  @ApiProperty({ description: 'The run; for a pipeline schedule, the pipeline run.' }) runId!: string;
  @ApiProperty() status!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) scheduledAt!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) finishedAt!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) error!: string | null;
}

export class ScheduleResponse {
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) description!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'The task each fire runs (null: a pipeline schedule).' })
  taskId!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'The pipeline each fire runs (null: a task schedule).' })
  pipelineId!: string | null;
  @ApiPropertyOptional({
    nullable: true,
    type: 'object',
    additionalProperties: true,
    description:
      "A pipeline schedule's run parameters as given (the pipeline's defaults are applied at each fire); null for a task schedule.",
  })
  params!: Record<string, unknown> | null;
  @ApiProperty({ type: Object }) spec!: ScheduleSpecInput;
  @ApiProperty({ type: Object }) policies!: SchedulePolicyInput;
  @ApiProperty({ description: 'Paused by a user (resume to restart).' }) paused!: boolean;
  @ApiPropertyOptional({ nullable: true, type: String }) note!: string | null;
  @ApiProperty() version!: number;
  @ApiProperty() temporalScheduleId!: string;
  @ApiProperty({ description: 'Deep link to the schedule in the Temporal Web UI.' }) temporalUiUrl!: string;
  @ApiPropertyOptional({
    enum: ['ok', 'missing', 'unavailable'],
    description: 'Single-schedule views: whether Temporal holds the schedule (`missing`: the reconciler will recreate it).',
  })
  temporal?: string;
  @ApiPropertyOptional({ type: [FireTimeResponse], description: 'Next fire times (up to 10), as Temporal computes them.' })
  nextFires?: FireTimeResponse[];
  @ApiPropertyOptional({ type: ScheduleStatsResponse }) stats?: ScheduleStatsResponse;
  @ApiPropertyOptional({ type: LastRunResponse, nullable: true }) lastRun?: LastRunResponse | null;
  @ApiProperty() createdAt!: string;
  @ApiProperty() updatedAt!: string;

  static from(s: ScheduleEntity, uiUrl: string, live?: ScheduleLiveState, lastRun?: LastFire | null): ScheduleResponse {
    const d = live?.description;
    const zone = s.spec.timezone ?? 'UTC';
    return {
      id: s.id,
      name: s.name,
      description: s.description,
      taskId: s.taskId,
      pipelineId: s.pipelineId,
      params: s.params,
      spec: { ...s.spec, excludeCalendarIds: s.excludeCalendarIds },
      policies: s.policies,
      paused: s.paused,
      note: s.pauseNote,
      version: s.version,
      temporalScheduleId: s.temporalScheduleId,
      temporalUiUrl: uiUrl,
      ...(live ? { temporal: live.temporal } : {}),
      ...(d
        ? {
            nextFires: d.info.nextActionTimes.map((t) => ({ at: t.toISOString(), local: localIsoString(t, zone) })),
            stats: {
              actionsTaken: d.info.numActionsTaken,
              skippedOverlap: d.info.numActionsSkippedOverlap,
              missedCatchupWindow: d.info.numActionsMissedCatchupWindow,
              running: d.info.runningActions.length,
            },
          }
        : {}),
      ...(lastRun !== undefined
        ? {
            lastRun: lastRun && {
              runId: lastRun.id,
              status: lastRun.status,
              scheduledAt: isoOrNull(lastRun.scheduledAt),
              finishedAt: isoOrNull(lastRun.finishedAt),
              error: lastRun.error,
            },
          }
        : {}),
      createdAt: s.createdAt.toISOString(),
      updatedAt: s.updatedAt.toISOString(),
    };
  }
}

export const SchedulePage = PageOf(ScheduleResponse);

export class FireResponse {
  @ApiProperty() scheduledAt!: string;
  @ApiProperty({ enum: ['ran', 'missed', 'excluded'] }) outcome!: string;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'The run; for a pipeline schedule, the pipeline run.' })
  runId!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) runStatus!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'When the fire started its run.' }) startedAt!: string | null;
  @ApiPropertyOptional({ nullable: true, type: Number, description: 'startedAt − scheduledAt.' }) latenessMs!: number | null;
  @ApiPropertyOptional({ nullable: true, enum: [...FIRE_REASONS] }) reason!: string | null;

  static from(f: FireRecord): FireResponse {
    return { ...f };
  }
}

export class FireListResponse {
  @ApiProperty({ type: [FireResponse], description: 'Newest first.' }) items!: FireResponse[];
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: 'The window held more fires than one answer: ask again with from=nextFrom.',
  })
  nextFrom!: string | null;
}

export class BackfillResponse {
  @ApiProperty({ description: 'Fires of the schedule in the range.' }) fires!: number;
  @ApiProperty({ description: 'Of those, fires that already had a run.' }) alreadyRan!: number;
  @ApiProperty({
    description:
      'Fires that get a run now (with onlyMissing: false Temporal is sent the whole range, but fires that already ran get no second run).',
  })
  started!: number;
}
