import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ATTEMPT_STATUSES, RUN_STATUSES, RUN_TRIGGERS } from '@task-scheduler/contracts';
import type { RunOverrides } from '@task-scheduler/contracts';
import type { RunAttemptEntity, RunEntity, RunShardEntity } from '@task-scheduler/db';
import { PageOf, isoOrNull } from '../../common/page.dto';
import { StoredStreamResponse } from './run-logs.dto';

export class AttemptOutputSizes {
  @ApiProperty({ type: StoredStreamResponse }) stdout!: StoredStreamResponse;
  @ApiProperty({ type: StoredStreamResponse }) stderr!: StoredStreamResponse;
}

export class RunAttemptResponse {
  @ApiProperty({ description: 'Shard the attempt belongs to (0 for an unsharded run).' }) shardIndex!: number;
  @ApiProperty() attempt!: number;
  @ApiProperty({ enum: ATTEMPT_STATUSES }) status!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) workerIdentity!: string | null;
  @ApiPropertyOptional({ nullable: true, type: Number }) exitCode!: number | null;
  @ApiPropertyOptional({ nullable: true, type: Number }) httpStatus!: number | null;
  @ApiPropertyOptional({ nullable: true, type: String }) error!: string | null;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: 'Shell: standard output. HTTP: response body. The first OUTPUT_CAP_BYTES; all of it: GET /v1/runs/{id}/logs.',
  })
  stdout!: string | null;
  @ApiProperty() stdoutTruncated!: boolean;
  @ApiPropertyOptional({ nullable: true, type: String }) stderr!: string | null;
  @ApiProperty() stderrTruncated!: boolean;
  @ApiPropertyOptional({
    nullable: true,
    enum: ['sandbox', 'none'],
    description: 'Shell: how the attempt was isolated (none only on workers run with SHELL_ISOLATION=none).',
  })
  isolation!: string | null;
  @ApiPropertyOptional({
    nullable: true,
    enum: ['memory', 'processes', 'cpu', 'file_size', 'workdir_size'],
    description: 'Shell: the limit the attempt crossed, which ended it.',
  })
  resourceLimit!: string | null;
  @ApiPropertyOptional({
    nullable: true,
    type: AttemptOutputSizes,
    description:
      'What the attempt printed and what the run output store kept, per stream (GET /v1/runs/{id}/logs reads it); null while running.',
  })
  output!: AttemptOutputSizes | null;
  @ApiProperty() startedAt!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) finishedAt!: string | null;
  @ApiProperty({ description: "Deep link to the run's workflow in the Temporal Web UI, where the attempt's activity events are." })
  temporalUiUrl!: string;

  static from(a: RunAttemptEntity, uiUrl: string): RunAttemptResponse {
    return {
      shardIndex: a.shardIndex,
      attempt: a.attempt,
      status: a.status,
      workerIdentity: a.workerIdentity,
      exitCode: a.exitCode,
      httpStatus: a.httpStatus,
      error: a.error,
      stdout: a.stdout,
      stdoutTruncated: a.stdoutTruncated,
      stderr: a.stderr,
      stderrTruncated: a.stderrTruncated,
      isolation: a.isolation,
      resourceLimit: a.resourceLimit,
      output: a.outputStore ?? null,
      startedAt: a.startedAt.toISOString(),
      finishedAt: isoOrNull(a.finishedAt),
      temporalUiUrl: uiUrl,
    };
  }
}

export class RunShardResponse {
  @ApiProperty() shardIndex!: number;
  @ApiProperty({ enum: RUN_STATUSES }) status!: string;
  @ApiProperty() attemptCount!: number;
  @ApiPropertyOptional({ nullable: true, type: Number }) exitCode!: number | null;
  @ApiPropertyOptional({ nullable: true, type: Number }) httpStatus!: number | null;
  @ApiPropertyOptional({ nullable: true, type: String }) error!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) stdout!: string | null;
  @ApiProperty() stdoutTruncated!: boolean;
  @ApiPropertyOptional({ nullable: true, type: String }) stderr!: string | null;
  @ApiProperty() stderrTruncated!: boolean;
  @ApiProperty() finishedAt!: string;

  static from(s: RunShardEntity): RunShardResponse {
    return {
      shardIndex: s.shardIndex,
      status: s.status,
      attemptCount: s.attempts,
      exitCode: s.exitCode,
      httpStatus: s.httpStatus,
      error: s.error,
      stdout: s.stdout,
      stdoutTruncated: s.stdoutTruncated,
      stderr: s.stderr,
      stderrTruncated: s.stderrTruncated,
      finishedAt: s.finishedAt.toISOString(),
    };
  }
}

export class RunResponse {
  @ApiProperty() id!: string;
  @ApiProperty() taskId!: string;
  @ApiProperty() taskVersion!: number;
  @ApiProperty({ enum: RUN_TRIGGERS }) trigger!: string;
  @ApiProperty({ enum: RUN_STATUSES }) status!: string;
  @ApiProperty({ description: 'Attempts started so far (the most of any shard).' }) attemptCount!: number;
  @ApiProperty() shardCount!: number;
  @ApiProperty({ type: Object, description: 'Trigger parameters merged over the task spec.' }) overrides!: RunOverrides;
  @ApiPropertyOptional({ nullable: true, type: Number }) exitCode!: number | null;
  @ApiPropertyOptional({ nullable: true, type: Number }) httpStatus!: number | null;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: "The end of the last attempt's output (OUTPUT_TAIL_BYTES, from Temporal history); per shard for sharded runs.",
  })
  stdout!: string | null;
  @ApiProperty() stdoutTruncated!: boolean;
  @ApiPropertyOptional({ nullable: true, type: String }) stderr!: string | null;
  @ApiProperty() stderrTruncated!: boolean;
  @ApiPropertyOptional({ nullable: true, type: String }) error!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) workerIdentity!: string | null;
  @ApiProperty({ description: 'Failed or timed out with no attempt left, and not re-driven yet.' }) deadLetter!: boolean;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'The run this one retries.' }) retryOfRunId!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'The run that re-drove this dead letter.' })
  redrivenByRunId!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'The schedule whose fire started this run.' })
  scheduleId!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: "The fire's nominal time (scheduled runs)." })
  scheduledAt!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'The pipeline run this run is a step (or an item of a step) of.' })
  pipelineRunId!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'The key of its pipeline step.' }) pipelineStepKey!: string | null;
  @ApiPropertyOptional({ nullable: true, type: Number, description: 'The item of a forEach step (from 0).' }) itemIndex!: number | null;
  @ApiPropertyOptional({
    nullable: true,
    type: 'object',
    additionalProperties: true,
    description: 'What the run reported: shell `$TASK_OUTPUTS` values, or HTTP `{ status, body }`; secrets as ***.',
  })
  outputs!: Record<string, unknown> | null;
  @ApiProperty() workflowId!: string;
  @ApiPropertyOptional({ nullable: true, type: String }) temporalRunId!: string | null;
  @ApiProperty({ description: 'Deep link to the run in the Temporal Web UI.' }) temporalUiUrl!: string;
  @ApiProperty() queuedAt!: string;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'When the run took a concurrency slot of its tenant.' })
  admittedAt!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) startedAt!: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) finishedAt!: string | null;
  @ApiPropertyOptional({ type: [RunShardResponse], description: 'Final record of each shard (single-run views only).' })
  shards?: RunShardResponse[];
  @ApiPropertyOptional({ type: [RunAttemptResponse], description: 'Every attempt by shard, oldest first (single-run views only).' })
  attempts?: RunAttemptResponse[];

  /** The run without `stdout`/`stderr` on it, its shards and attempts (`?output=omit`). */
  static withoutOutput(r: RunResponse): RunResponse {
    const strip = <T extends { stdout?: unknown; stderr?: unknown }>(o: T): T => {
      const rest = { ...o };
      delete rest.stdout;
      delete rest.stderr;
      return rest;
    };
    return { ...strip(r), shards: r.shards?.map(strip), attempts: r.attempts?.map(strip) };
  }

  static from(r: RunEntity, uiUrl: string, detail?: { attempts: RunAttemptEntity[]; shards: RunShardEntity[] }): RunResponse {
    return {
      id: r.id,
      taskId: r.taskId,
      taskVersion: r.taskVersion,
      trigger: r.trigger,
      status: r.status,
      attemptCount: r.attempts,
      shardCount: r.shardCount,
      overrides: r.overrides,
      exitCode: r.exitCode,
      httpStatus: r.httpStatus,
      stdout: r.stdout,
      stdoutTruncated: r.stdoutTruncated,
      stderr: r.stderr,
      stderrTruncated: r.stderrTruncated,
      error: r.error,
      workerIdentity: r.workerIdentity,
      deadLetter: r.deadLetter && r.redrivenAt === null,
      retryOfRunId: r.retryOfRunId,
      redrivenByRunId: r.redrivenByRunId,
      scheduleId: r.scheduleId,
      scheduledAt: isoOrNull(r.scheduledAt),
      pipelineRunId: r.pipelineRunId,
      pipelineStepKey: r.pipelineStepKey,
      itemIndex: r.itemIndex,
      outputs: r.outputs,
      workflowId: r.workflowId,
      temporalRunId: r.temporalRunId,
      temporalUiUrl: uiUrl,
      queuedAt: r.queuedAt.toISOString(),
      admittedAt: isoOrNull(r.admittedAt),
      startedAt: isoOrNull(r.startedAt),
      finishedAt: isoOrNull(r.finishedAt),
      ...(detail
        ? { shards: detail.shards.map(RunShardResponse.from), attempts: detail.attempts.map((a) => RunAttemptResponse.from(a, uiUrl)) }
        : {}),
    };
  }
}

export const RunPage = PageOf(RunResponse);
