import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { AppConfig } from '@task-scheduler/config';
import { FINAL_PIPELINE_RUN_STATUSES, pipelineRunWorkflowId, taskQueues } from '@task-scheduler/contracts';
import type {
  PipelineDefinition,
  PipelineRunInput,
  PipelineRunStatus,
  PipelineRunTrigger,
  StepReason,
  StepStatus,
} from '@task-scheduler/contracts';
import { temporalUiUrl } from '@task-scheduler/core';
import { PipelineEntity, PipelineRunEntity, PipelineVersionEntity } from '@task-scheduler/db';
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
import { SEARCH_ATTRIBUTE_KEYS as SA, cancelOrGone, isUnavailable } from '../common/temporal';
import { APP_CONFIG, TEMPORAL_CLIENT } from '../infra/tokens';
import { MetricsService } from '../metrics/metrics.service';
import type { PipelineRunStepResponse } from './dtos/pipeline-run.response';
import { runParams } from './pipeline-params';

export interface PipelineRunListQuery {
  limit: number;
  cursor?: string;
  pipelineId?: string;
  status?: PipelineRunStatus;
  trigger?: PipelineRunTrigger;
}

/** One step's row (absent until the workflow opened the run) with the runs of its items. */
interface StepRow {
  step_key: string;
  status: StepStatus;
  reason: StepReason | null;
  error: string | null;
  item_count: number | null;
  outputs: unknown;
  reused_from_pipeline_run_id: string | null;
  started_at: Date | null;
  finished_at: Date | null;
}
interface StepRunRow {
  id: string;
  pipeline_step_key: string;
  item_index: number | null;
  status: string;
  attempts: number;
  started_at: Date | null;
  finished_at: Date | null;
}

const iso = (d: Date | null): string | null => (d ? new Date(d).toISOString() : null);

/** Starting, cancelling and retrying pipeline runs as `pipelineRunWorkflow`s, and reading their records. */
@Injectable()
export class PipelineRunsService {
  private readonly logger = new Logger('PipelineRunsService');

  constructor(
    private readonly db: DataSource,
    private readonly audit: AuditService,
    @Inject(TEMPORAL_CLIENT) private readonly temporal: Client,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {}

  uiUrl(run: PipelineRunEntity): string {
    return temporalUiUrl(this.config.TEMPORAL_UI_URL, this.config.TEMPORAL_NAMESPACE, run.workflowId, run.temporalRunId);
  }

  /**
   * Starts a run of the pipeline's current version with `params` (defaults filled in). With an
   * Idempotency-Key, a repeat of the same request returns the run the first one created, and a different
   * request with the same key is refused (as for task runs).
   */
  async start(
    ctx: RequestContext,
    pipelineId: string,
    opts: { params?: Record<string, unknown>; idempotencyKey?: string },
  ): Promise<{ run: PipelineRunEntity; created: boolean }> {
    const { idempotencyKey } = opts;
    checkIdempotencyKey(idempotencyKey);
    const given = opts.params ?? {};
    const hash = requestHash(given);
    const pipeline = await this.livePipeline(this.db.manager, ctx, pipelineId);
    return startIdempotently({
      key: idempotencyKey,
      requestHash: hash,
      noun: 'pipeline run',
      idField: 'pipelineRunId',
      find: (key) =>
        this.db.getRepository(PipelineRunEntity).findOneBy({ tenantId: ctx.tenantId, pipelineId: pipeline.id, idempotencyKey: key }),
      start: () => {
        runParams(pipeline.definition.parameters, given); // refuses bad parameters before anything is written
        return this.db.transaction(async (tx) => {
          // Read again under FOR SHARE: a change or delete of the pipeline waits for this run's commit, or this run for it.
          const locked = await this.livePipeline(tx, ctx, pipeline.id, true);
          return this.startRun(tx, ctx, locked, {
            version: locked.version,
            params: runParams(locked.definition.parameters, given),
            trigger: 'manual',
            idempotencyKey,
            requestHash: hash,
            retryOf: null,
          });
        });
      },
    });
  }

  private async livePipeline(tx: EntityManager, ctx: RequestContext, id: string, lock = false): Promise<PipelineEntity> {
    const p = isUuid(id)
      ? await tx.getRepository(PipelineEntity).findOne({
          where: { id, tenantId: ctx.tenantId, deletedAt: IsNull() },
          ...(lock ? { lock: { mode: 'pessimistic_read' as const } } : {}),
        })
      : null;
    if (!p) throw new ApiError(ErrorCode.PIPELINE_NOT_FOUND, `pipeline ${id} does not exist`);
    return p;
  }

  /**
   * Records the run as `queued` and starts its workflow inside the caller's transaction: if Temporal refuses
   * the start, no row remains; if the commit fails after the start, the workflow's openPipelineRun writes the
   * row from its input. Returns null when an equal Idempotency-Key won the race.
   */
  private async startRun(
    tx: EntityManager,
    ctx: RequestContext,
    pipeline: PipelineEntity,
    r: {
      version: number;
      params: Record<string, unknown>;
      trigger: PipelineRunTrigger;
      idempotencyKey?: string;
      requestHash: string | null;
      retryOf: string | null;
    },
  ): Promise<PipelineRunEntity | null> {
    const id = randomUUID();
    const workflowId = pipelineRunWorkflowId(id);
    const inserted = await tx
      .createQueryBuilder()
      .insert()
      .into(PipelineRunEntity)
      .values({
        id,
        tenantId: ctx.tenantId,
        pipelineId: pipeline.id,
        pipelineVersion: r.version,
        trigger: r.trigger,
        status: 'queued',
        params: r.params as never,
        idempotencyKey: r.idempotencyKey ?? null,
        requestHash: r.requestHash,
        retryOfPipelineRunId: r.retryOf,
        workflowId,
        queuedAt: () => 'clock_timestamp()',
      })
      .orIgnore()
      .returning('id')
      .execute();
    if (inserted.raw.length === 0) return null;
    await this.audit.record(tx, ctx, {
      action: r.trigger === 'retry' ? 'pipeline_run.retry' : 'pipeline.run',
      targetType: 'pipeline_run',
      targetId: id,
      details: { pipelineId: pipeline.id, pipelineVersion: r.version, trigger: r.trigger, ...(r.retryOf ? { retryOf: r.retryOf } : {}) },
    });
    const queues = taskQueues(this.config.TASK_QUEUE_PREFIX);
    // params, version and retryOf are also in the row: the input repeats them so that, should this commit fail
    // after the start reached Temporal, the workflow records the run as asked rather than with defaults.
    // httpTaskQueue: where the pipeline's alert webhook is delivered from.
    const input: PipelineRunInput = {
      pipelineRunId: id,
      tenantId: ctx.tenantId,
      pipelineId: pipeline.id,
      params: r.params,
      trigger: r.trigger,
      pipelineVersion: r.version,
      ...(r.retryOf ? { retryOfPipelineRunId: r.retryOf } : {}),
      httpTaskQueue: queues.http,
    };
    try {
      await this.temporal.workflow.start('pipelineRunWorkflow', {
        taskQueue: queues.workflows,
        workflowId,
        args: [input],
        priority: { fairnessKey: ctx.tenantId },
        typedSearchAttributes: new TypedSearchAttributes([
          { key: SA.tenantId, value: ctx.tenantId },
          { key: SA.pipelineRunId, value: id },
          { key: SA.trigger, value: r.trigger },
        ]),
        memo: { pipelineName: pipeline.name },
      });
    } catch (err) {
      this.logger.error({ err, pipelineRunId: id }, 'could not start pipeline run workflow');
      if (!isUnavailable(err)) throw err;
      throw new ApiError(
        ErrorCode.TEMPORAL_UNAVAILABLE,
        'the pipeline run could not be started: Temporal is unavailable; nothing was recorded, try again',
      );
    }
    this.metrics.pipelineRunTriggered(r.trigger);
    return tx.getRepository(PipelineRunEntity).findOneByOrFail({ id });
  }

  async getRun(ctx: RequestContext, id: string): Promise<PipelineRunEntity> {
    const run = isUuid(id) ? await this.db.getRepository(PipelineRunEntity).findOneBy({ id, tenantId: ctx.tenantId }) : null;
    if (!run) throw new ApiError(ErrorCode.PIPELINE_RUN_NOT_FOUND, `pipeline run ${id} does not exist`);
    return run;
  }

  /** The names of the runs' pipelines (deleted ones too), by id. */
  async pipelineNames(ctx: RequestContext, runs: readonly PipelineRunEntity[]): Promise<Map<string, string>> {
    const ids = [...new Set(runs.map((r) => r.pipelineId))];
    if (ids.length === 0) return new Map();
    const rows: { id: string; name: string }[] = await this.db.query(
      `SELECT id, name FROM pipelines WHERE tenant_id = $1 AND id = ANY($2::uuid[])`,
      [ctx.tenantId, ids],
    );
    return new Map(rows.map((p) => [p.id, p.name]));
  }

  /** Every step of the run, in definition order: its record (pending until the workflow opened the run) and its runs. */
  async steps(ctx: RequestContext, run: PipelineRunEntity): Promise<PipelineRunStepResponse[]> {
    const version = await this.db
      .getRepository(PipelineVersionEntity)
      .findOneBy({ pipelineId: run.pipelineId, version: run.pipelineVersion, tenantId: ctx.tenantId });
    const definition: PipelineDefinition | undefined = version?.definition as PipelineDefinition | undefined;
    const rows: StepRow[] = await this.db.query(
      `SELECT step_key, status, reason, error, item_count, outputs, reused_from_pipeline_run_id, started_at, finished_at
         FROM pipeline_run_steps WHERE pipeline_run_id = $1 AND tenant_id = $2`,
      [run.id, ctx.tenantId],
    );
    // A reused step's runs are those of the pipeline run that ran it.
    const sources = [run.id, ...new Set(rows.map((r) => r.reused_from_pipeline_run_id).filter((x): x is string => x !== null))];
    const runs: (StepRunRow & { pipeline_run_id: string })[] = await this.db.query(
      `SELECT id, pipeline_run_id, pipeline_step_key, item_index, status, attempts, started_at, finished_at
         FROM runs WHERE pipeline_run_id = ANY($1::uuid[]) AND tenant_id = $2 ORDER BY pipeline_step_key, item_index NULLS FIRST`,
      [sources, ctx.tenantId],
    );
    const byKey = new Map(rows.map((r) => [r.step_key, r]));
    return (definition?.steps ?? []).map((s) => {
      const row = byKey.get(s.key);
      const source = row?.reused_from_pipeline_run_id ?? run.id;
      const own = runs.filter((r) => r.pipeline_step_key === s.key && r.pipeline_run_id === source);
      const fanOut = s.forEach !== undefined;
      return {
        key: s.key,
        taskId: s.taskId,
        triggerRule: s.triggerRule,
        dependsOn: s.dependsOn,
        status: row?.status ?? 'pending',
        reason: row?.reason ?? null,
        error: row?.error ?? null,
        itemCount: row?.item_count ?? null,
        outputs: row?.outputs ?? null,
        runId: fanOut ? null : (own.find((r) => r.item_index === null)?.id ?? null),
        attempts: own.reduce((n, r) => n + r.attempts, 0),
        startedAt: iso(row?.started_at ?? null),
        finishedAt: iso(row?.finished_at ?? null),
        reusedFromPipelineRunId: row?.reused_from_pipeline_run_id ?? null,
        items: fanOut
          ? own
              .filter((r) => r.item_index !== null)
              .map((r) => ({
                itemIndex: r.item_index as number,
                runId: r.id,
                status: r.status,
                attempts: r.attempts,
                startedAt: iso(r.started_at),
                finishedAt: iso(r.finished_at),
              }))
          : null,
      };
    });
  }

  /**
   * Asks Temporal to cancel the pipeline workflow: it cancels its running steps, waits for them and ends the
   * run `cancelled`. A run whose workflow is gone is ended here with its non-final steps (the record is all
   * there is). The audit says what was done: a cancellation asked of Temporal, or the record ended (`gone`).
   */
  async cancel(ctx: RequestContext, id: string): Promise<PipelineRunEntity> {
    const run = await this.getRun(ctx, id);
    if (FINAL_PIPELINE_RUN_STATUSES.includes(run.status)) throw this.alreadyFinished(run);
    const gone = await cancelOrGone(this.temporal, run.workflowId, 'pipeline run');
    if (gone) {
      // The workflow ended without closing the run (terminated from outside, or deleted): the record is all
      // there is to end. Its steps end with it in the same transaction, so that no step stays pending or
      // running under a cancelled run (nothing else would ever settle them).
      const ended = await this.db.transaction(async (tx) => {
        const [rows]: [{ id: string }[], number] = await tx.query(
          `UPDATE pipeline_runs SET status = 'cancelled', error = $2, finished_at = now(), updated_at = now()
            WHERE id = $1 AND status IN ('queued', 'running') RETURNING id`,
          [run.id, `cancelled; ${gone}`],
        );
        if (rows.length === 0) return false;
        await tx.query(
          `UPDATE pipeline_run_steps SET status = 'cancelled', reason = 'pipeline_cancelled', finished_at = now(), updated_at = now()
            WHERE pipeline_run_id = $1 AND status IN ('pending', 'running')`,
          [run.id],
        );
        await this.audit.record(tx, ctx, {
          action: 'pipeline_run.cancel',
          targetType: 'pipeline_run',
          targetId: run.id,
          details: { gone },
        });
        return true;
      });
      // Nothing matched: the run ended on its own between the read and the update.
      if (!ended) throw this.alreadyFinished(await this.getRun(ctx, id));
    } else {
      await this.audit.record(this.db.manager, ctx, { action: 'pipeline_run.cancel', targetType: 'pipeline_run', targetId: run.id });
    }
    return this.getRun(ctx, id);
  }

  private alreadyFinished(run: PipelineRunEntity): ApiError {
    return new ApiError(
      ErrorCode.PIPELINE_RUN_ALREADY_FINISHED,
      `pipeline run ${run.id} already ended ${run.status}; there is nothing to cancel`,
    );
  }

  /**
   * A new run of the same pipeline version with the same parameters, linked to this finished one: the
   * workflow takes over its succeeded steps (reusableSteps) and runs the rest. Refused while it runs, and
   * when it succeeded with every step succeeded (nothing would run).
   */
  async retry(ctx: RequestContext, id: string): Promise<PipelineRunEntity> {
    const old = await this.getRun(ctx, id);
    if (!FINAL_PIPELINE_RUN_STATUSES.includes(old.status)) {
      throw new ApiError(
        ErrorCode.PIPELINE_RUN_NOT_FINISHED,
        `pipeline run ${old.id} is still ${old.status}; cancel it or wait for it to end before retrying`,
      );
    }
    if (old.status === 'succeeded') {
      const [{ redo }]: { redo: number }[] = await this.db.query(
        `SELECT count(*)::int AS redo FROM pipeline_run_steps WHERE pipeline_run_id = $1 AND status <> 'succeeded'`,
        [old.id],
      );
      if (redo === 0) {
        throw new ApiError(
          ErrorCode.PIPELINE_RUN_NOTHING_TO_RETRY,
          `pipeline run ${old.id} succeeded with every step succeeded; there is nothing to retry (start a new run instead)`,
        );
      }
    }
    const run = await this.db.transaction(async (tx) => {
      const pipeline = await this.livePipeline(tx, ctx, old.pipelineId, true);
      return this.startRun(tx, ctx, pipeline, {
        version: old.pipelineVersion,
        params: old.params,
        trigger: 'retry',
        requestHash: null,
        retryOf: old.id,
      });
    });
    if (!run) throw new Error('retry pipeline run was not inserted');
    return run;
  }

  list(ctx: RequestContext, q: PipelineRunListQuery): Promise<Page<PipelineRunEntity>> {
    const qb = this.db
      .getRepository(PipelineRunEntity)
      .createQueryBuilder('r')
      .where('r.tenant_id = :tenantId', { tenantId: ctx.tenantId });
    if (q.pipelineId) qb.andWhere('r.pipeline_id = :pipelineId', { pipelineId: q.pipelineId });
    if (q.status) qb.andWhere('r.status = :status', { status: q.status });
    if (q.trigger) qb.andWhere('r.trigger = :trigger', { trigger: q.trigger });
    return keysetPage(qb, 'r', q.limit, q.cursor);
  }
}
