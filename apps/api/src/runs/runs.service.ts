import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { AppConfig } from '@task-scheduler/config';
import { SEARCH_ATTRIBUTES, runWorkflowId, taskQueues } from '@task-scheduler/contracts';
import type { RunTrigger, TaskRunInput } from '@task-scheduler/contracts';
import { temporalUiUrl } from '@task-scheduler/core';
import { RunAttemptEntity, RunEntity } from '@task-scheduler/db';
import type { TaskEntity } from '@task-scheduler/db';
import { Client } from '@temporalio/client';
import { SearchAttributeType, TypedSearchAttributes, defineSearchAttributeKey } from '@temporalio/common';
import { DataSource } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import type { RequestContext } from '../auth/request-context';
import { ApiError, ErrorCode } from '../common/api-error';
import { isUuid, keysetPage } from '../common/pagination';
import type { Page } from '../common/pagination';
import { APP_CONFIG, TEMPORAL_CLIENT } from '../infra/tokens';
import { TasksService } from '../tasks/tasks.service';

const SA = {
  tenantId: defineSearchAttributeKey(SEARCH_ATTRIBUTES.tenantId, SearchAttributeType.KEYWORD),
  taskId: defineSearchAttributeKey(SEARCH_ATTRIBUTES.taskId, SearchAttributeType.KEYWORD),
  runId: defineSearchAttributeKey(SEARCH_ATTRIBUTES.runId, SearchAttributeType.KEYWORD),
  trigger: defineSearchAttributeKey(SEARCH_ATTRIBUTES.trigger, SearchAttributeType.KEYWORD),
};

/** gRPC UNAVAILABLE / DEADLINE_EXCEEDED: Temporal is down or unreachable, worth retrying. */
function isUnavailable(err: unknown): boolean {
  const code = (err as { cause?: { code?: number } })?.cause?.code;
  return code === 14 || code === 4;
}

export interface TriggerResult {
  run: RunEntity;
  /** False when an earlier request with the same Idempotency-Key already created the run. */
  created: boolean;
}

/** Starting runs as Temporal workflows, and reading run records from PostgreSQL. */
@Injectable()
export class RunsService {
  private readonly logger = new Logger('RunsService');

  constructor(
    private readonly db: DataSource,
    private readonly tasks: TasksService,
    private readonly audit: AuditService,
    @Inject(TEMPORAL_CLIENT) private readonly temporal: Client,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  uiUrl(run: RunEntity): string {
    return temporalUiUrl(this.config.TEMPORAL_UI_URL, this.config.TEMPORAL_NAMESPACE, run.workflowId, run.temporalRunId);
  }

  /**
   * Records the run as `queued` and starts its workflow inside one
   * transaction: if Temporal refuses the start, no row remains; if the commit
   * fails after the start, the workflow's first activity writes the row.
   */
  async trigger(ctx: RequestContext, taskId: string, idempotencyKey?: string, trigger: RunTrigger = 'manual'): Promise<TriggerResult> {
    if (idempotencyKey !== undefined && !/^[\x21-\x7e]{1,255}$/.test(idempotencyKey)) {
      throw new ApiError(ErrorCode.IDEMPOTENCY_KEY_INVALID, 'Idempotency-Key must be 1-255 visible ASCII characters');
    }
    const task = await this.tasks.get(ctx, taskId);
    if (!task.enabled) throw new ApiError(ErrorCode.TASK_DISABLED, `task ${task.id} is disabled`);
    if (idempotencyKey) {
      const existing = await this.findByIdempotencyKey(ctx, task.id, idempotencyKey);
      if (existing) return { run: existing, created: false };
    }

    const runId = randomUUID();
    const workflowId = runWorkflowId(runId);
    const run = await this.db.transaction(async (tx) => {
      const inserted = await tx
        .createQueryBuilder()
        .insert()
        .into(RunEntity)
        .values({
          id: runId,
          tenantId: ctx.tenantId,
          taskId: task.id,
          taskVersion: task.version,
          trigger,
          status: 'queued',
          attempts: 0,
          idempotencyKey: idempotencyKey ?? null,
          workflowId,
          queuedAt: () => 'now()',
        })
        .orIgnore()
        .returning('id')
        .execute();
      if (inserted.raw.length === 0) return null; // lost an idempotency race
      await this.audit.record(tx, ctx, {
        action: 'run.trigger',
        targetType: 'run',
        targetId: runId,
        details: { taskId: task.id, trigger },
      });
      await this.startWorkflow(task, runId, workflowId, trigger);
      return tx.getRepository(RunEntity).findOneByOrFail({ id: runId });
    });
    if (run) return { run, created: true };
    const winner = await this.findByIdempotencyKey(ctx, task.id, idempotencyKey as string);
    if (!winner) throw new Error('idempotent insert ignored but no run found');
    return { run: winner, created: false };
  }

  private async startWorkflow(task: TaskEntity, runId: string, workflowId: string, trigger: RunTrigger): Promise<void> {
    const queues = taskQueues(this.config.TASK_QUEUE_PREFIX);
    const input: TaskRunInput = {
      runId,
      tenantId: task.tenantId,
      taskId: task.id,
      taskVersion: task.version,
      trigger,
      executor: 'shell',
      shell: task.spec,
      timeoutSeconds: task.timeoutSeconds,
      retry: task.retryPolicy,
      shellTaskQueue: queues.shell,
    };
    try {
      await this.temporal.workflow.start('taskRunWorkflow', {
        taskQueue: queues.workflows,
        workflowId,
        args: [input],
        typedSearchAttributes: new TypedSearchAttributes([
          { key: SA.tenantId, value: task.tenantId },
          { key: SA.taskId, value: task.id },
          { key: SA.runId, value: runId },
          { key: SA.trigger, value: trigger },
        ]),
        memo: { taskName: task.name },
      });
    } catch (err) {
      this.logger.error({ err, runId }, 'could not start run workflow');
      if (!isUnavailable(err)) throw err;
      throw new ApiError(
        ErrorCode.TEMPORAL_UNAVAILABLE,
        'the run could not be started: Temporal is unavailable; nothing was recorded, try again',
      );
    }
  }

  private findByIdempotencyKey(ctx: RequestContext, taskId: string, key: string): Promise<RunEntity | null> {
    return this.db.getRepository(RunEntity).findOneBy({ tenantId: ctx.tenantId, taskId, idempotencyKey: key });
  }

  async get(ctx: RequestContext, id: string): Promise<{ run: RunEntity; attempts: RunAttemptEntity[] }> {
    const run = isUuid(id) ? await this.db.getRepository(RunEntity).findOneBy({ id, tenantId: ctx.tenantId }) : null;
    if (!run) throw new ApiError(ErrorCode.RUN_NOT_FOUND, `run ${id} does not exist`);
    const attempts = await this.db
      .getRepository(RunAttemptEntity)
      .find({ where: { runId: run.id, tenantId: ctx.tenantId }, order: { attempt: 'ASC' } });
    return { run, attempts };
  }

  list(ctx: RequestContext, q: { limit: number; cursor?: string; taskId?: string; status?: string }): Promise<Page<RunEntity>> {
    const qb = this.db.getRepository(RunEntity).createQueryBuilder('r').where('r.tenant_id = :tenantId', { tenantId: ctx.tenantId });
    if (q.taskId) qb.andWhere('r.task_id = :taskId', { taskId: q.taskId });
    if (q.status) qb.andWhere('r.status = :status', { status: q.status });
    return keysetPage(qb, 'r', q.limit, q.cursor);
  }
}
