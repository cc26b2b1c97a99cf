import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { AppConfig } from '@task-scheduler/config';
import { FINAL_RUN_STATUSES, runWorkflowId, taskQueues } from '@task-scheduler/contracts';
import type { RunOverrides, RunStatus, RunTrigger } from '@task-scheduler/contracts';
import { temporalUiUrl } from '@task-scheduler/core';
import { RunAttemptEntity, RunEntity, RunShardEntity, TaskEntity, TenantEntity, runsToWake } from '@task-scheduler/db';
import { Client } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { DataSource, IsNull } from 'typeorm';
import type { EntityManager } from 'typeorm';
import { AuditService } from '../audit/audit.service';
import type { RequestContext } from '../auth/request-context';
import { ApiError, ErrorCode } from '../common/api-error';
import { checkIdempotencyKey, requestHash, startIdempotently } from '../common/idempotency';
import { isUuid, keysetPage } from '../common/pagination';
import type { Page } from '../common/pagination';
import { SEARCH_ATTRIBUTE_KEYS as SA, cancelOrGone, isUnavailable, wakeWaitingRuns } from '../common/temporal';
import { APP_CONFIG, TEMPORAL_CLIENT } from '../infra/tokens';
import { MetricsService } from '../metrics/metrics.service';
import { TasksService } from '../tasks/tasks.service';
import { mergeOverrides, runInputOf } from './run-input';

export interface TriggerOptions {
  idempotencyKey?: string;
  overrides?: RunOverrides;
  trigger?: RunTrigger;
}

export interface TriggerResult {
  run: RunEntity;
  /** False when an earlier request with the same Idempotency-Key already created the run. */
  created: boolean;
}

export interface RunDetail {
  run: RunEntity;
  attempts: RunAttemptEntity[];
  shards: RunShardEntity[];
}

export interface RunListQuery {
  limit: number;
  cursor?: string;
  taskId?: string;
  status?: RunStatus;
  trigger?: RunTrigger;
  from?: string;
  to?: string;
  deadLetter?: boolean;
}

/** Starting, cancelling and retrying runs as Temporal workflows, and reading run records from PostgreSQL. */
@Injectable()
export class RunsService {
  private readonly logger = new Logger('RunsService');

  constructor(
    private readonly db: DataSource,
    private readonly tasks: TasksService,
    private readonly audit: AuditService,
    @Inject(TEMPORAL_CLIENT) private readonly temporal: Client,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {}

  uiUrl(run: RunEntity): string {
    return temporalUiUrl(this.config.TEMPORAL_UI_URL, this.config.TEMPORAL_NAMESPACE, run.workflowId, run.temporalRunId);
  }

  /**
   * Starts a run of a task. With an Idempotency-Key, a repeat of the same
   * request returns the run the first one created (also under concurrent
   * repeats: the unique index decides), and a different request with the
   * same key is refused.
   */
  async trigger(ctx: RequestContext, taskId: string, opts: TriggerOptions = {}): Promise<TriggerResult> {
    const { idempotencyKey } = opts;
    checkIdempotencyKey(idempotencyKey);
    const task = await this.tasks.get(ctx, taskId);
    const overrides = opts.overrides ?? {};
    const hash = requestHash(overrides);
    return startIdempotently({
      key: idempotencyKey,
      requestHash: hash,
      noun: 'run',
      idField: 'runId',
      find: (key) => this.db.getRepository(RunEntity).findOneBy({ tenantId: ctx.tenantId, taskId: task.id, idempotencyKey: key }),
      start: () => {
        if (!task.enabled) throw new ApiError(ErrorCode.TASK_DISABLED, `task ${task.id} is disabled`);
        mergeOverrides(task, overrides); // refuses bad parameters before anything is written
        return this.db.transaction((tx) =>
          this.startRun(tx, ctx, task.id, {
            overrides,
            trigger: opts.trigger ?? 'manual',
            idempotencyKey,
            requestHash: hash,
            retryOfRunId: null,
          }),
        );
      },
    });
  }

  /**
   * Records the run as `queued` and starts its workflow inside the caller's
   * transaction: if Temporal refuses the start, no row remains; if the commit
   * fails after the start, the workflow's first activity writes the row.
   * Returns null when an equal Idempotency-Key won the race.
   *
   * The task is read again here under `FOR SHARE`, which conflicts with the
   * locks a change, disable or delete of the task takes: a run either
   * commits before such a change (and ran the version it read), or waits for
   * it and then sees the task as it is now (disabled or deleted: refused).
   */
  private async startRun(
    tx: EntityManager,
    ctx: RequestContext,
    taskId: string,
    r: { overrides: RunOverrides; trigger: RunTrigger; idempotencyKey?: string; requestHash: string | null; retryOfRunId: string | null },
  ): Promise<RunEntity | null> {
    const task = await tx
      .getRepository(TaskEntity)
      .findOne({ where: { id: taskId, tenantId: ctx.tenantId, deletedAt: IsNull() }, lock: { mode: 'pessimistic_read' } });
    if (!task) throw new ApiError(ErrorCode.TASK_NOT_FOUND, `task ${taskId} does not exist`);
    if (!task.enabled) throw new ApiError(ErrorCode.TASK_DISABLED, `task ${task.id} is disabled`);
    mergeOverrides(task, r.overrides); // the version may have changed since the first check
    const runId = randomUUID();
    const workflowId = runWorkflowId(runId);
    const inserted = await tx
      .createQueryBuilder()
      .insert()
      .into(RunEntity)
      .values({
        id: runId,
        tenantId: ctx.tenantId,
        taskId: task.id,
        taskVersion: task.version,
        trigger: r.trigger,
        status: 'queued',
        attempts: 0,
        idempotencyKey: r.idempotencyKey ?? null,
        requestHash: r.requestHash,
        // jsonb: TypeORM's deep-partial typing cannot follow `body: unknown`.
        overrides: r.overrides as never,
        retryOfRunId: r.retryOfRunId,
        priority: task.priority,
        shardCount: task.shardCount,
        workflowId,
        // The time of the write, taken under the task's lock (now() would be the transaction's start, before it).
        queuedAt: () => 'clock_timestamp()',
      })
      .orIgnore()
      .returning('id')
      .execute();
    if (inserted.raw.length === 0) return null;
    await this.audit.record(tx, ctx, {
      action: r.trigger === 'retry' ? 'run.retry' : 'run.trigger',
      targetType: 'run',
      targetId: runId,
      details: { taskId: task.id, trigger: r.trigger, ...(r.retryOfRunId ? { retryOf: r.retryOfRunId } : {}) },
    });
    const tenant = await tx.getRepository(TenantEntity).findOneByOrFail({ id: task.tenantId });
    await this.startWorkflow(task, runId, workflowId, r.trigger, r.overrides, tenant.shellPolicy);
    // Started: should the commit fail now, the workflow records the run itself.
    this.metrics.runTriggered(r.trigger);
    return tx.getRepository(RunEntity).findOneByOrFail({ id: runId });
  }

  private async startWorkflow(
    task: TaskEntity,
    runId: string,
    workflowId: string,
    trigger: RunTrigger,
    overrides: RunOverrides,
    shellPolicy: TenantEntity['shellPolicy'],
  ): Promise<void> {
    const queues = taskQueues(this.config.TASK_QUEUE_PREFIX);
    const input = runInputOf(this.config, task, { runId, trigger, overrides, shellPolicy });
    try {
      await this.temporal.workflow.start('taskRunWorkflow', {
        taskQueue: queues.workflows,
        workflowId,
        args: [input],
        priority: { fairnessKey: task.tenantId },
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

  private async getRun(ctx: RequestContext, id: string): Promise<RunEntity> {
    const run = isUuid(id) ? await this.db.getRepository(RunEntity).findOneBy({ id, tenantId: ctx.tenantId }) : null;
    if (!run) throw new ApiError(ErrorCode.RUN_NOT_FOUND, `run ${id} does not exist`);
    return run;
  }

  async get(ctx: RequestContext, id: string): Promise<RunDetail> {
    const run = await this.getRun(ctx, id);
    const [attempts, shards] = await Promise.all([
      this.db
        .getRepository(RunAttemptEntity)
        .find({ where: { runId: run.id, tenantId: ctx.tenantId }, order: { shardIndex: 'ASC', attempt: 'ASC' } }),
      this.db.getRepository(RunShardEntity).find({ where: { runId: run.id, tenantId: ctx.tenantId }, order: { shardIndex: 'ASC' } }),
    ]);
    return { run, attempts, shards };
  }

  /**
   * Asks Temporal to cancel the run: a waiting run ends at once; a running
   * one's process group (or HTTP request) is stopped when the cancellation
   * reaches its executor with the next heartbeat.
   */
  async cancel(ctx: RequestContext, id: string): Promise<RunEntity> {
    const run = await this.getRun(ctx, id);
    if (FINAL_RUN_STATUSES.includes(run.status)) throw this.alreadyFinished(run);
    const gone = await cancelOrGone(this.temporal, run.workflowId, 'run');
    if (gone) {
      // The workflow ended without recording the run (terminated from outside, or deleted): the record is all
      // there is to end, and ending it frees the run's concurrency slot for a run that waits for one.
      let wake: string[] = [];
      const ended = await this.db.transaction(async (tx) => {
        const [rows]: [{ id: string }[], number] = await tx.query(
          `UPDATE runs SET status = 'cancelled', error = $2, finished_at = now(), updated_at = now()
            WHERE id = $1 AND status IN ('queued', 'running') RETURNING id`,
          [run.id, `cancelled; ${gone}`],
        );
        if (rows.length === 0) return false;
        await this.audit.record(tx, ctx, { action: 'run.cancel', targetType: 'run', targetId: run.id, details: { gone } });
        wake = await runsToWake(tx, run.id);
        return true;
      });
      // Nothing matched: the run ended on its own between the read and the update.
      if (!ended) throw this.alreadyFinished(await this.getRun(ctx, id));
      await wakeWaitingRuns(this.temporal, wake, this.logger);
    } else {
      await this.audit.record(this.db.manager, ctx, { action: 'run.cancel', targetType: 'run', targetId: run.id });
    }
    return this.getRun(ctx, id);
  }

  private alreadyFinished(run: RunEntity): ApiError {
    return new ApiError(ErrorCode.RUN_ALREADY_FINISHED, `run ${run.id} already ended ${run.status}; there is nothing to cancel`);
  }

  /**
   * Starts a new run of the same task with the same parameters, linked to
   * the old one (`retryOfRunId`). The new run uses the task's current
   * definition, so a fixed task can re-drive its failures. The first retry of
   * a dead letter re-drives it (takes it off the dead-letter list); the
   * re-drive route refuses a second re-drive, plain retries are always allowed.
   */
  async retry(ctx: RequestContext, id: string, opts: { deadLetterOnly?: boolean } = {}): Promise<RunEntity> {
    const old = await this.getRun(ctx, id);
    if (!FINAL_RUN_STATUSES.includes(old.status)) {
      throw new ApiError(
        ErrorCode.RUN_NOT_FINISHED,
        `run ${old.id} is still ${old.status}; cancel it or wait for it to end before retrying`,
      );
    }
    if (opts.deadLetterOnly && !old.deadLetter) {
      throw new ApiError(ErrorCode.NOT_A_DEAD_LETTER, `run ${old.id} ended ${old.status}; only failed or timed-out runs are dead letters`);
    }
    const task = await this.tasks.get(ctx, old.taskId);
    if (!task.enabled) throw new ApiError(ErrorCode.TASK_DISABLED, `task ${task.id} is disabled`);
    mergeOverrides(task, old.overrides);
    const run = await this.db.transaction(async (tx) => {
      let redrives = false;
      if (old.deadLetter && (opts.deadLetterOnly || old.redrivenAt === null)) {
        const claimed = await tx
          .createQueryBuilder()
          .update(RunEntity)
          .set({ redrivenAt: () => 'now()' })
          .where('id = :id AND redriven_at IS NULL', { id: old.id })
          .execute();
        redrives = claimed.affected === 1;
        if (!redrives && opts.deadLetterOnly) {
          throw new ApiError(ErrorCode.RUN_ALREADY_REDRIVEN, `run ${old.id} was already re-driven`, [
            { message: `re-driven by run ${old.redrivenByRunId}`, runId: old.redrivenByRunId },
          ]);
        }
      }
      const started = await this.startRun(tx, ctx, task.id, {
        overrides: old.overrides,
        trigger: 'retry',
        requestHash: null,
        retryOfRunId: old.id,
      });
      if (!started) throw new Error('retry run was not inserted');
      if (redrives) await tx.query(`UPDATE runs SET redriven_by_run_id = $2 WHERE id = $1`, [old.id, started.id]);
      return started;
    });
    return run;
  }

  list(ctx: RequestContext, q: RunListQuery): Promise<Page<RunEntity>> {
    const qb = this.db.getRepository(RunEntity).createQueryBuilder('r').where('r.tenant_id = :tenantId', { tenantId: ctx.tenantId });
    if (q.taskId) qb.andWhere('r.task_id = :taskId', { taskId: q.taskId });
    if (q.status) qb.andWhere('r.status = :status', { status: q.status });
    if (q.trigger) qb.andWhere('r.trigger = :trigger', { trigger: q.trigger });
    if (q.from) qb.andWhere('r.created_at >= :from', { from: q.from });
    if (q.to) qb.andWhere('r.created_at < :to', { to: q.to });
    if (q.deadLetter) qb.andWhere('r.dead_letter AND r.redriven_at IS NULL');
    return keysetPage(qb, 'r', q.limit, q.cursor);
  }
}
