import { applyDecorators } from '@nestjs/common';
import { ApiPropertyOptional } from '@nestjs/swagger';
import type { ShellLimitKey } from '@task-scheduler/contracts';
import { SHELL_LIMIT_BOUNDS } from '@task-scheduler/core';
import { IsInt, Max, Min } from 'class-validator';
import { Optional } from '../../common/validation';

/** An optional integer limit within its bounds, documented from the same table. */
function LimitProperty(key: ShellLimitKey, description: string, example?: number): PropertyDecorator {
  const { min, max } = SHELL_LIMIT_BOUNDS[key];
  return applyDecorators(
    ApiPropertyOptional({ minimum: min, maximum: max, description, ...(example !== undefined ? { example } : {}) }),
    Optional(),
    IsInt(),
    Min(min),
    Max(max),
  );
}

/** Resource limits of a shell attempt (task values, or a tenant's caps). */
export class ShellLimitsDto {
  @LimitProperty('memoryMb', 'Memory of all processes together, MiB.', 512) memoryMb?: number;
  @LimitProperty('processes', 'Processes and threads alive at once.', 64) processes?: number;
  @LimitProperty('cpuSeconds', 'CPU time of all processes, seconds.', 600) cpuSeconds?: number;
  @LimitProperty('fileSizeMb', 'Largest file a process may write, MiB.', 256) fileSizeMb?: number;
  @LimitProperty('openFiles', 'Open files per process.', 1024) openFiles?: number;
  @LimitProperty('workdirMb', 'Size of the working directory, of /tmp and of /dev/shm (each), MiB.', 512) workdirMb?: number;
}
