import { ApiProperty } from '@nestjs/swagger';
import { QUEUE_KINDS } from '@task-scheduler/contracts';
import type { QueueKind } from '@task-scheduler/contracts';

export const POLLER_TYPES = ['workflow', 'activity'] as const;
export type PollerType = (typeof POLLER_TYPES)[number];

/** One worker polling a task queue, as Temporal last saw it. */
export class PollerResponse {
  @ApiProperty({ example: '4242@worker-7f9c', description: 'The identity the worker reported to Temporal.' })
  identity!: string;

  @ApiProperty({ nullable: true, type: String, description: 'When Temporal last saw this poller (ISO 8601).' })
  lastSeenAt!: string | null;

  @ApiProperty({
    type: 'number',
    format: 'double',
    description:
      'The task-dispatch rate limit (tasks per second) the poller asked Temporal for, not a measured rate; 100000 when the worker sets none.',
  })
  ratePerSecond!: number;

  @ApiProperty({ enum: POLLER_TYPES, description: 'Whether it polls workflow tasks or activity tasks.' })
  pollerType!: PollerType;
}

export class TaskQueueWorkersResponse {
  @ApiProperty({ enum: QUEUE_KINDS }) kind!: QueueKind;
  @ApiProperty({ example: 'task-scheduler.workflows' }) name!: string;
  @ApiProperty({ type: [PollerResponse] }) pollers!: PollerResponse[];
}

export class WorkersResponse {
  @ApiProperty({ type: [TaskQueueWorkersResponse] }) queues!: TaskQueueWorkersResponse[];
}
