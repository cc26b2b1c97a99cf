import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ATTEMPT_STATUSES } from '@task-scheduler/contracts';
import { Type } from 'class-transformer';
import { IsIn, IsInt, Max, Min } from 'class-validator';
import { Optional } from '../../common/validation';

export class RunLogsQueryDto {
  @ApiPropertyOptional({ minimum: 0, maximum: 9999, default: 0, description: 'Shard whose output to read (0 for an unsharded run).' })
  @Optional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(9999)
  shard?: number;

  @ApiPropertyOptional({
    minimum: 1,
    maximum: 100000,
    description: "Attempt to read; default: the shard's latest (with `follow`, the next one to start if none has).",
  })
  @Optional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100000)
  attempt?: number;

  @ApiPropertyOptional({ enum: ['stdout', 'stderr'], description: 'Only this stream; default: both, interleaved as printed.' })
  @Optional()
  @IsIn(['stdout', 'stderr'])
  stream?: 'stdout' | 'stderr';

  @ApiPropertyOptional({
    minimum: 0,
    default: 0,
    description: 'Chunks after this sequence number (`nextAfter` of the previous page; with `follow`, the `Last-Event-ID` header wins).',
  })
  @Optional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(2147483647)
  after?: number;

  @ApiPropertyOptional({
    enum: ['true', 'false'],
    default: 'false',
    description: 'true: answer `text/event-stream` and stream chunks as they are stored, until the attempt ends.',
  })
  @Optional()
  @IsIn(['true', 'false'])
  follow?: 'true' | 'false';
}

export class OutputChunkResponse {
  @ApiProperty({ description: 'Position in the attempt, from 1, across both streams.' }) seq!: number;
  @ApiProperty({ enum: ['stdout', 'stderr'] }) stream!: string;
  @ApiProperty({ description: 'The text as printed (UTF-8), secret values as ***.' }) text!: string;
}

export class StoredStreamResponse {
  @ApiProperty({ description: 'Bytes the task printed.' }) bytes!: number;
  @ApiProperty({ description: 'Bytes kept in the output store (OUTPUT_STORE_CAP_BYTES per stream).' }) storedBytes!: number;
  @ApiProperty({ description: 'The store kept less than was printed.' }) truncated!: boolean;
}

export class RunLogsResponse {
  @ApiProperty() runId!: string;
  @ApiProperty() shardIndex!: number;
  @ApiPropertyOptional({ nullable: true, type: Number, description: 'The attempt read; null when none has started yet.' })
  attempt!: number | null;
  @ApiPropertyOptional({ nullable: true, enum: ATTEMPT_STATUSES }) attemptStatus!: string | null;
  @ApiProperty({ type: [OutputChunkResponse], description: 'Up to about 1 MiB of output, in print order.' })
  chunks!: OutputChunkResponse[];
  @ApiProperty({ description: 'Pass as `after` to read on.' }) nextAfter!: number;
  @ApiProperty({ description: 'The attempt has ended and every stored chunk up to its end is in this or an earlier page.' })
  complete!: boolean;
  @ApiPropertyOptional({ nullable: true, type: StoredStreamResponse, description: 'Sizes, once the attempt has ended.' })
  stdout!: StoredStreamResponse | null;
  @ApiPropertyOptional({ nullable: true, type: StoredStreamResponse }) stderr!: StoredStreamResponse | null;
}

export class GetRunQueryDto {
  @ApiPropertyOptional({
    enum: ['include', 'omit'],
    default: 'include',
    description: 'omit: leave `stdout` and `stderr` out of the run, its shards and attempts (read output with GET /v1/runs/{id}/logs).',
  })
  @Optional()
  @IsIn(['include', 'omit'])
  output?: 'include' | 'omit';
}
