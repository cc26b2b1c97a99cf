import { Inject, Injectable, Logger } from '@nestjs/common';
import type { AppConfig } from '@task-scheduler/config';
import { QUEUE_KINDS, taskQueues } from '@task-scheduler/contracts';
import type { QueueKind } from '@task-scheduler/contracts';
import { Client } from '@temporalio/client';
import { optionalTsToDate } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { ApiError, ErrorCode } from '../common/api-error';
import { isUnavailable } from '../common/temporal';
import { APP_CONFIG, TEMPORAL_CLIENT } from '../infra/tokens';
import type { PollerResponse, PollerType, TaskQueueWorkersResponse, WorkersResponse } from './dtos/worker.response';

const { TaskQueueKind, TaskQueueType } = temporal.api.enums.v1;

/** Which task types are polled on each queue: the workflows queue also carries the run-record activities. */
const POLLED: Record<QueueKind, readonly PollerType[]> = {
  workflows: ['workflow', 'activity'],
  shell: ['activity'],
  http: ['activity'],
};

const TASK_QUEUE_TYPE: Record<PollerType, temporal.api.enums.v1.TaskQueueType> = {
  workflow: TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  activity: TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
};

/** A listing is a handful of cheap calls; past this, Temporal is treated as unavailable rather than letting the request hang in retries. */
const DESCRIBE_DEADLINE_MS = 5_000;

/**
 * The workers polling this deployment's task queues, as Temporal reports
 * them. Workers are shared infrastructure, not tenant data, so the answer is
 * the same for every tenant.
 */
@Injectable()
export class WorkersService {
  private readonly logger = new Logger('WorkersService');

  constructor(
    @Inject(TEMPORAL_CLIENT) private readonly temporal: Client,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * Every queue with its pollers. Temporal keeps a poller listed for a few
   * minutes after its last poll, so a worker that just stopped still appears
   * with an older `lastSeenAt`.
   */
  async list(): Promise<WorkersResponse> {
    const names = taskQueues(this.config.TASK_QUEUE_PREFIX);
    try {
      const queues = await this.temporal.connection.withDeadline(Date.now() + DESCRIBE_DEADLINE_MS, () =>
        Promise.all(QUEUE_KINDS.map((kind) => this.describe(kind, names[kind]))),
      );
      return { queues };
    } catch (err) {
      if (!isUnavailable(err)) throw err;
      this.logger.warn({ err }, 'could not describe task queues');
      throw new ApiError(ErrorCode.TEMPORAL_UNAVAILABLE, 'workers could not be listed: Temporal is unavailable, try again');
    }
  }

  private async describe(kind: QueueKind, name: string): Promise<TaskQueueWorkersResponse> {
    const perType = await Promise.all(
      POLLED[kind].map(async (pollerType) => {
        const res = await this.temporal.workflowService.describeTaskQueue({
          namespace: this.config.TEMPORAL_NAMESPACE,
          taskQueue: { name, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
          taskQueueType: TASK_QUEUE_TYPE[pollerType],
        });
        return res.pollers.map((p): PollerResponse => ({
          identity: p.identity ?? '',
          lastSeenAt: optionalTsToDate(p.lastAccessTime)?.toISOString() ?? null,
          ratePerSecond: p.ratePerSecond ?? 0,
          pollerType,
        }));
      }),
    );
    return { kind, name, pollers: perType.flat() };
  }
}
