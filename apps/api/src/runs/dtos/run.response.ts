import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { RUN_STATUSES, RUN_TRIGGERS } from '@task-scheduler/contracts';
import type { RunAttemptEntity, RunEntity } from '@task-scheduler/db';
import { PageOf, isoOrNull } from '../../common/page.dto';

export class RunAttemptResponse {
  @ApiProperty() attempt!: number;
  @ApiProperty({ enum: ['running', 'succeeded', 'failed', 'timed_out', 'cancelled', 'abandoned'] }) status!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) workerIdentity!: string | null;
  @ApiPropertyOptional({ nullable: true, type: Number }) exitCode!: number | null;
  @ApiPropertyOptional({ nullable: true, type: String }) error!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) stdout!: string | null;
  @ApiProperty() stdoutTruncated!: boolean;
  @ApiPropertyOptional({ nullable: true, type: String }) stderr!: string | null;
  @ApiProperty() stderrTruncated!: boolean;
  @ApiProperty() startedAt!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) finishedAt!: string | null;

  static from(a: RunAttemptEntity): RunAttemptResponse {
    return {
      attempt: a.attempt,
      status: a.status,
      workerIdentity: a.workerIdentity,
      exitCode: a.exitCode,
      error: a.error,
      stdout: a.stdout,
      stdoutTruncated: a.stdoutTruncated,
      stderr: a.stderr,
      stderrTruncated: a.stderrTruncated,
      startedAt: a.startedAt.toISOString(),
      finishedAt: isoOrNull(a.finishedAt),
    };
  }
}

export class RunResponse {
  @ApiProperty() id!: string;
  @ApiProperty() taskId!: string;
  @ApiProperty() taskVersion!: number;
  @ApiProperty({ enum: RUN_TRIGGERS }) trigger!: string;
  @ApiProperty({ enum: RUN_STATUSES }) status!: string;
  @ApiProperty({ description: 'Attempts started so far.' }) attemptCount!: number;
  @ApiPropertyOptional({ nullable: true, type: Number }) exitCode!: number | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'Output of the last attempt (capped).' }) stdout!: string | null;
  @ApiProperty() stdoutTruncated!: boolean;
  @ApiPropertyOptional({ nullable: true, type: String }) stderr!: string | null;
  @ApiProperty() stderrTruncated!: boolean;
  @ApiPropertyOptional({ nullable: true, type: String }) error!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) workerIdentity!: string | null;
  @ApiProperty() workflowId!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) temporalRunId!: string | null;
  @ApiProperty({ description: 'Deep link to the run in the Temporal Web UI.' }) temporalUiUrl!: string;
  @ApiProperty() queuedAt!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) startedAt!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) finishedAt!: string | null;
  @ApiPropertyOptional({ type: [RunAttemptResponse], description: 'Every attempt, oldest first (single-run views only).' })
  attempts?: RunAttemptResponse[];

  static from(r: RunEntity, uiUrl: string, attempts?: RunAttemptEntity[]): RunResponse {
    return {
      id: r.id,
      taskId: r.taskId,
      taskVersion: r.taskVersion,
      trigger: r.trigger,
      status: r.status,
      attemptCount: r.attempts,
      exitCode: r.exitCode,
      stdout: r.stdout,
      stdoutTruncated: r.stdoutTruncated,
      stderr: r.stderr,
      stderrTruncated: r.stderrTruncated,
      error: r.error,
      workerIdentity: r.workerIdentity,
      workflowId: r.workflowId,
      temporalRunId: r.temporalRunId,
      temporalUiUrl: uiUrl,
      queuedAt: r.queuedAt.toISOString(),
      startedAt: isoOrNull(r.startedAt),
      finishedAt: isoOrNull(r.finishedAt),
      ...(attempts ? { attempts: attempts.map(RunAttemptResponse.from) } : {}),
    };
  }
}

export const RunPage = PageOf(RunResponse);
