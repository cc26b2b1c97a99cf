import { ApiPropertyOptional } from '@nestjs/swagger';
import { SHELL_LIMIT_BOUNDS } from '@task-scheduler/core';
import { IsInt, IsOptional, Max, Min } from 'class-validator';

const b = SHELL_LIMIT_BOUNDS;

/** Resource limits of a shell attempt (task values, or a tenant's caps). */
export class ShellLimitsDto {
  @ApiPropertyOptional({
    minimum: b.memoryMb.min,
    maximum: b.memoryMb.max,
    description: 'Memory of all processes together, MiB.',
    example: 512,
  })
  @IsOptional()
  @IsInt()
  @Min(b.memoryMb.min)
  @Max(b.memoryMb.max)
  memoryMb?: number;

  @ApiPropertyOptional({
    minimum: b.processes.min,
    maximum: b.processes.max,
    description: 'Processes and threads alive at once.',
    example: 64,
  })
  @IsOptional()
  @IsInt()
  @Min(b.processes.min)
  @Max(b.processes.max)
  processes?: number;

  @ApiPropertyOptional({
    minimum: b.cpuSeconds.min,
    maximum: b.cpuSeconds.max,
    description: 'CPU time of all processes, seconds.',
    example: 600,
  })
  @IsOptional()
  @IsInt()
  @Min(b.cpuSeconds.min)
  @Max(b.cpuSeconds.max)
  cpuSeconds?: number;

  @ApiPropertyOptional({ minimum: b.fileSizeMb.min, maximum: b.fileSizeMb.max, description: 'Largest file a process may write, MiB.' })
  @IsOptional()
  @IsInt()
  @Min(b.fileSizeMb.min)
  @Max(b.fileSizeMb.max)
  fileSizeMb?: number;

  @ApiPropertyOptional({ minimum: b.openFiles.min, maximum: b.openFiles.max, description: 'Open files per process.' })
  @IsOptional()
  @IsInt()
  @Min(b.openFiles.min)
  @Max(b.openFiles.max)
  openFiles?: number;

  @ApiPropertyOptional({
    minimum: b.workdirMb.min,
    maximum: b.workdirMb.max,
    description: 'Size of the working directory and of /tmp (each), MiB.',
  })
  @IsOptional()
  @IsInt()
  @Min(b.workdirMb.min)
  @Max(b.workdirMb.max)
  workdirMb?: number;
}
