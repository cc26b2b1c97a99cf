import { createHash } from 'node:crypto';
import {
  FINAL_PIPELINE_RUN_STATUSES,
  PIPELINE_LIMITS,
  STEP_OUTCOMES,
  plannedSteps,
  reusableSteps,
  stepRunWorkflowId,
  upstreamOf,
} from '@task-scheduler/contracts';
import type {
  AlertDelivery,
  AlertSpec,
  PipelineDefinition,
  PipelineRunOpened,
  PipelineRunTrigger,
  PipelineStep,
  RunOverrides,
  StepItemStart,
  StepOutcome,
  StepPreparation,
  StepReason,
  StepStatus,
  TaskRunInput,
  TenantShellPolicy,
} from '@task-scheduler/contracts';
import {
  EvaluationDeadlineExceeded,
  ExpressionError,
  RunInputError,
  applyParams,
  checkExpression,
  evaluateCondition,
  overrideTemplates,
  renderOverrides,
  renderValue,
  runInputOf,
  templatesIn,
} from '@task-scheduler/core';
import type { ExpressionContext, RunInputConfig, RunnableTask } from '@task-scheduler/core';
import { ApplicationFailure } from '@temporalio/activity';
import type { DataSource, EntityManager } from 'typeorm';
import { planAlertState } from '../alerts/alert-state';

export interface OpenPipelineRun {
  pipelineRunId: string;
  /** The workflow drew the id (a schedule's fire): no row exists yet. */
  drawn: boolean;
  tenantId: string;
  pipelineId: string;
  scheduleId: string | null;
  scheduledAt: string | null;
  params: Record<string, unknown> | null;
  trigger: PipelineRunTrigger;
  workflowId: string;
  temporalRunId: string;
  /**
   * A manual or retry run's version and the run it retries, from the
   * workflow's input: the API recorded the run, but when its commit failed
   * after the start, the run is recorded here as the API would have.
   */
  pipelineVersion?: number | null;
  retryOfPipelineRunId?: string | null;
}

export interface SettleStep {
  pipelineRunId: string;
  stepKey: string;
  outcome: StepOutcome;
  reason: StepReason;
  error: string | null;
}

/**
 * Bytes of the item inputs one {@link PipelineRecorder.stepItems} call
 * returns at most (it returns fewer items than asked past it): the result is
 * one payload, and Temporal refuses payloads over 2 MB.
 */
const MAX_BATCH_BYTES = 1024 * 1024;

/**
 * Wall-clock budget of one prepareStep or stepItems call for its
 * expressions (when, forEach, every item's templates). They run
 * synchronously on the event loop of the workflows worker, which every
 * tenant's pipelines share, and a local activity's timeout cannot interrupt
 * them: past it the step fails instead. Checked between evaluations, so a
 * call overruns it by at most one expression (macros do not nest).
 */
const EVALUATION_BUDGET_MS = 2000;

const FINAL_STEP = `(${STEP_OUTCOMES.map((s) => `'${s}'`).join(', ')})`;
const FINAL_RUN = `(${FINAL_PIPELINE_RUN_STATUSES.map((s) => `'${s}'`).join(', ')})`;

/**
 * The run id of one item of a step (or of a step without `forEach`,
 * `itemIndex` null): a name-based UUID (version 5 layout over SHA-256 of
 * `<pipeline run>:<step>:<item>`), so a retried activity and a workflow that
 * continued as new name the same run, and the run's row is found again.
 */
export function stepRunId(pipelineRunId: string, stepKey: string, itemIndex: number | null): string {
  const h = createHash('sha256').update(`${pipelineRunId}:${stepKey}:${itemIndex}`).digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** A step that cannot start; its message is what the step shows as its error. */
class PrepareError extends Error {}

/** PostgreSQL refusing a value for its content (22P05: a NUL in jsonb, 22021: bytes that are no UTF-8): the step's input, not an outage. */
function isUnstorable(err: unknown): boolean {
  const code = (err as { driverError?: { code?: string }; code?: string }).driverError?.code ?? (err as { code?: string }).code;
  return code === '22P05' || code === '22021';
}

interface RunRow {
  id: string;
  tenant_id: string;
  pipeline_id: string;
  pipeline_version: number;
  status: string;
  error: string | null;
  params: Record<string, unknown>;
  retry_of_pipeline_run_id: string | null;
}

interface StepRow {
  step_key: string;
  status: StepStatus;
  outputs: unknown;
  items: unknown[] | null;
  item_count: number | null;
}

interface TaskRow {
  id: string;
  tenant_id: string;
  name: string;
  version: number;
  executor: RunnableTask['executor'];
  spec: RunnableTask['spec'];
  secrets: string | null;
  timeout_seconds: number;
  retry_policy: RunnableTask['retryPolicy'];
  shard_count: number;
  priority: number;
  enabled: boolean;
  deleted: boolean;
}

/** Everything an item's input is built from; loaded once per call. */
interface StepScope {
  run: RunRow;
  step: PipelineStep;
  ctx: ExpressionContext;
  task: RunnableTask;
  /** The child's memo in the Temporal UI. */
  taskName: string;
  shellPolicy: TenantShellPolicy | null;
}

/**
 * The records of pipeline runs, for the pipeline workflow's local activities:
 * the run and its steps' states, what a step runs with (its `when`,
 * `forEach` and templates evaluated against its upstream steps' stored
 * outputs), and the final status with its alert. Like `RunRecorder`, every
 * write is idempotent: a retried call converges on the same rows, and a final
 * status, once written, is never overwritten.
 */
export class PipelineRecorder {
  constructor(
    private readonly db: DataSource,
    private readonly config: RunInputConfig,
  ) {}

  /**
   * Opens the pipeline run. A manual or retry run was recorded `queued` by
   * the API; a schedule's fire is recorded here first, with its nominal time
   * and its pipeline's current version and parameter defaults, unless another
   * workflow holds the fire already (then: `duplicate`). A run whose pipeline
   * is deleted by now, or that is final already (cancelled before it
   * started), is `refused` and recorded `cancelled`. Otherwise the run is
   * marked running, every step gets its row (`pending`), and a retry takes
   * over the steps {@link reusableSteps} allows from the run it retries, as
   * `succeeded`/`reused` with their outputs.
   */
  async openRun(a: OpenPipelineRun): Promise<PipelineRunOpened> {
    return this.db.transaction(async (tx) => {
      const refused = (reason: string): PipelineRunOpened => ({ kind: 'refused', pipelineRunId: a.pipelineRunId, reason });
      let run = await this.lockedRun(tx, a.pipelineRunId);
      if (!run) {
        const recorded = await this.recordFire(tx, a);
        if (recorded.kind !== 'recorded') return recorded;
        run = (await this.lockedRun(tx, a.pipelineRunId)) as RunRow;
      }
      if (run.tenant_id !== a.tenantId || run.pipeline_id !== a.pipelineId) {
        return refused(`pipeline run ${run.id} belongs to another pipeline`);
      }
      if (FINAL_PIPELINE_RUN_STATUSES.includes(run.status as never)) {
        return refused(run.error ?? `the pipeline run is ${run.status} already`);
      }
      if (run.status === 'queued') {
        const [p]: { deleted: boolean }[] = await tx.query(`SELECT deleted_at IS NOT NULL AS deleted FROM pipelines WHERE id = $1`, [
          run.pipeline_id,
        ]);
        if (!p || p.deleted) {
          const error = 'pipeline_deleted: the pipeline was deleted before this run started; nothing ran';
          await tx.query(
            `UPDATE pipeline_runs SET status = 'cancelled', error = $2, finished_at = now(), temporal_run_id = $3, updated_at = now()
              WHERE id = $1 AND status NOT IN ${FINAL_RUN}`,
            [run.id, error, a.temporalRunId],
          );
          return refused(error);
        }
      }
      const def = await this.definition(tx, run);
      await tx.query(
        `UPDATE pipeline_runs SET status = 'running', started_at = coalesce(started_at, now()), temporal_run_id = $2, updated_at = now()
          WHERE id = $1 AND status NOT IN ${FINAL_RUN}`,
        [run.id, a.temporalRunId],
      );
      const planned = plannedSteps(def);
      let reuse = new Set<string>();
      if (run.retry_of_pipeline_run_id) {
        const previous: { step_key: string; status: StepOutcome }[] = await tx.query(
          `SELECT step_key, status FROM pipeline_run_steps WHERE pipeline_run_id = $1`,
          [run.retry_of_pipeline_run_id],
        );
        reuse = reusableSteps(planned, Object.fromEntries(previous.map((p) => [p.step_key, p.status])));
      }
      // One statement for all steps; ON CONFLICT keeps the rows a retried call (or a settled step) already has.
      await tx.query(
        `INSERT INTO pipeline_run_steps (pipeline_run_id, step_key, tenant_id, task_id, status, reason, item_count, items, outputs,
                                         reused_from_pipeline_run_id, started_at, finished_at)
         SELECT $1, x.step_key, $2, x.task_id,
                CASE WHEN p.step_key IS NULL THEN 'pending' ELSE 'succeeded' END,
                CASE WHEN p.step_key IS NULL THEN NULL ELSE 'reused' END,
                p.item_count, p.items, p.outputs,
                -- the run that ran it: a step reused twice names the first, whose runs hold its attempts
                coalesce(p.reused_from_pipeline_run_id, p.pipeline_run_id), p.started_at, p.finished_at
           FROM jsonb_to_recordset($3::jsonb) AS x(step_key text, task_id uuid, reused boolean)
           LEFT JOIN pipeline_run_steps p ON x.reused AND p.pipeline_run_id = $4 AND p.step_key = x.step_key
         ON CONFLICT (pipeline_run_id, step_key) DO NOTHING`,
        [
          run.id,
          run.tenant_id,
          JSON.stringify(def.steps.map((s) => ({ step_key: s.key, task_id: s.taskId, reused: reuse.has(s.key) }))),
          run.retry_of_pipeline_run_id,
        ],
      );
      const reused: { step_key: string }[] = await tx.query(
        `SELECT step_key FROM pipeline_run_steps WHERE pipeline_run_id = $1 AND reason = 'reused'`,
        [run.id],
      );
      const reusedKeys = new Set(reused.map((r) => r.step_key));
      return {
        kind: 'open',
        plan: {
          pipelineRunId: run.id,
          pipelineVersion: run.pipeline_version,
          steps: planned,
          maxParallelism: def.maxParallelism,
          failurePolicy: def.failurePolicy,
          reused: planned.map((s) => s.key).filter((k) => reusedKeys.has(k)),
        },
      };
    });
  }

  /**
   * Records a run the API did not: a schedule's fire, at its pipeline's
   * current version with its defaults applied, or a manual or retry start
   * whose commit failed, with the version, parameters (defaults applied by
   * the API) and retried run its input carries. The unique (schedule,
   * scheduled time) index decides between two workflows of one fire.
   */
  private async recordFire(
    tx: EntityManager,
    a: OpenPipelineRun,
  ): Promise<{ kind: 'recorded' } | Exclude<PipelineRunOpened, { kind: 'open' }>> {
    const [p]: { tenant_id: string; version: number; definition: PipelineDefinition; deleted: boolean }[] = await tx.query(
      `SELECT tenant_id, version, definition, deleted_at IS NOT NULL AS deleted FROM pipelines WHERE id = $1`,
      [a.pipelineId],
    );
    // Nothing to record it against: the row would name a pipeline of another tenant, or none.
    if (!p || p.tenant_id !== a.tenantId) return { kind: 'refused', pipelineRunId: a.pipelineRunId, reason: 'the pipeline does not exist' };
    const asked = a.trigger !== 'schedule' && a.pipelineVersion != null;
    let error: string | null = null;
    let params = a.params ?? {};
    if (p.deleted) error = 'pipeline_deleted: the pipeline was deleted before this run was due; nothing ran';
    else if (!asked) {
      // The schedule's parameters were checked when it was written; the pipeline may have changed since.
      const applied = applyParams(p.definition.parameters ?? [], params);
      if ('problems' in applied) error = `params_invalid: ${applied.problems.map((x) => x.message).join('; ')}; nothing ran`;
      else params = applied.params;
    }
    const inserted: unknown[] = await tx.query(
      `INSERT INTO pipeline_runs (id, tenant_id, pipeline_id, pipeline_version, trigger, status, params, schedule_id, scheduled_at,
                                  retry_of_pipeline_run_id, workflow_id, temporal_run_id, error, finished_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, CASE WHEN $13::text IS NULL THEN NULL ELSE now() END)
       ON CONFLICT DO NOTHING RETURNING id`,
      [
        a.pipelineRunId,
        a.tenantId,
        a.pipelineId,
        asked ? a.pipelineVersion : p.version,
        a.trigger,
        error ? 'cancelled' : 'queued',
        JSON.stringify(params),
        a.scheduleId,
        a.scheduledAt,
        a.retryOfPipelineRunId ?? null,
        a.workflowId,
        a.temporalRunId,
        error,
      ],
    );
    if (inserted.length === 0 && a.scheduleId && a.scheduledAt) {
      const [holder]: { id: string }[] = await tx.query(
        `SELECT id FROM pipeline_runs WHERE schedule_id = $1 AND scheduled_at = $2 AND id <> $3`,
        [a.scheduleId, a.scheduledAt, a.pipelineRunId],
      );
      if (holder) return { kind: 'duplicate', pipelineRunId: a.pipelineRunId, duplicateOf: holder.id };
    }
    if (error) return { kind: 'refused', pipelineRunId: a.pipelineRunId, reason: error };
    return { kind: 'recorded' };
  }

  /**
   * Decides whether a step runs and with what: its `when` (false: skipped),
   * its `forEach` list (empty: skipped; not a list or over
   * {@link PIPELINE_LIMITS.maxItemsPerStep}: failed), its task (it must
   * exist in the tenant and be enabled) and the input of every item, so a
   * template or override that cannot be rendered fails the step here, with
   * a readable error, and never as an activity retrying. A step that runs is
   * marked `running` with its resolved items; a skipped or failed one is
   * recorded by {@link settleStep}. A step already running answers as it
   * was prepared.
   */
  async prepareStep(a: { pipelineRunId: string; stepKey: string; upstream: Record<string, StepOutcome> }): Promise<StepPreparation> {
    const { run, def, step } = await this.stepOf(a.pipelineRunId, a.stepKey);
    const [row]: StepRow[] = await this.db.query(
      `SELECT step_key, status, outputs, items, item_count FROM pipeline_run_steps WHERE pipeline_run_id = $1 AND step_key = $2`,
      [run.id, step.key],
    );
    if (row?.status === 'running') return { action: 'run', itemCount: row.item_count ?? 1, fanOut: row.items !== null };
    const started = Date.now();
    const ctx: ExpressionContext = { ...(await this.contextOf(run, def, step, a.upstream)), deadline: started + EVALUATION_BUDGET_MS };
    let items: unknown[] | null = null;
    try {
      if (step.when !== undefined && !labelled('when', () => evaluateCondition(step.when as string, ctx))) {
        return { action: 'skip', reason: 'condition_false', detail: `when ${JSON.stringify(step.when)} is false` };
      }
      items = resolveItems(step, ctx);
      if (items !== null && items.length === 0) return { action: 'skip', reason: 'empty_list', detail: 'forEach gave no items' };
      await this.checkRunBudget(run.id, step.key, items?.length ?? 1);
      const scope = await this.scopeOf(run, step, ctx, true);
      // Every item rendered now, so that one that cannot be fails the step before any item runs.
      for (let i = 0; i < (items?.length ?? 1); i++) this.itemStart(scope, items, i);
      await this.db.query(
        `UPDATE pipeline_run_steps SET status = 'running', items = $3, item_count = $4, started_at = coalesce(started_at, now()),
                updated_at = now()
          WHERE pipeline_run_id = $1 AND step_key = $2 AND status = 'pending'`,
        [run.id, step.key, items === null ? null : JSON.stringify(items), items?.length ?? null],
      );
    } catch (err) {
      if (err instanceof PrepareError || err instanceof ExpressionError || err instanceof RunInputError) {
        return { action: 'fail', error: err.message };
      }
      if (err instanceof EvaluationDeadlineExceeded) return { action: 'fail', error: overBudget(items?.length ?? 1) };
      if (isUnstorable(err)) return { action: 'fail', error: `forEach: the list cannot be stored: ${(err as Error).message}` };
      throw err;
    }
    return { action: 'run', itemCount: items?.length ?? 1, fanOut: items !== null };
  }

  /**
   * Refuses a step whose runs would take the pipeline run past
   * {@link PIPELINE_LIMITS.maxRunsPerPipelineRun} (counting the runs of every
   * step that started; reused steps ran in the run they came from).
   */
  private async checkRunBudget(pipelineRunId: string, stepKey: string, runs: number): Promise<void> {
    const [{ started }]: { started: number }[] = await this.db.query(
      `SELECT coalesce(sum(coalesce(item_count, 1)), 0)::int AS started FROM pipeline_run_steps
        WHERE pipeline_run_id = $1 AND step_key <> $2 AND (status = 'running' OR reason = 'ran')`,
      [pipelineRunId, stepKey],
    );
    if (started + runs > PIPELINE_LIMITS.maxRunsPerPipelineRun) {
      throw new PrepareError(
        `this step would start ${runs} runs after ${started} already started; a pipeline run starts at most ${PIPELINE_LIMITS.maxRunsPerPipelineRun}`,
      );
    }
  }

  /**
   * The starts of items [from, from + count) of a prepared step (at most
   * {@link PIPELINE_LIMITS.itemsPerBatch}; fewer past its last item, and
   * fewer once their inputs reach {@link MAX_BATCH_BYTES}: the workflow asks
   * again for the rest, and always gets at least one). The task is read
   * as it is now, not checked again: a run of a task disabled or deleted
   * since the step was prepared is refused by the run's own record (like a
   * schedule's fire). An input that no longer builds (the task changed
   * executor since) fails non-retryably: retrying cannot mend it.
   */
  async stepItems(a: { pipelineRunId: string; stepKey: string; from: number; count: number }): Promise<StepItemStart[]> {
    const { run, def, step } = await this.stepOf(a.pipelineRunId, a.stepKey);
    const [row]: StepRow[] = await this.db.query(
      `SELECT step_key, status, outputs, items, item_count FROM pipeline_run_steps WHERE pipeline_run_id = $1 AND step_key = $2`,
      [run.id, step.key],
    );
    if (!row || row.status === 'pending') {
      throw ApplicationFailure.nonRetryable(`step ${step.key} of pipeline run ${run.id} was not prepared`, 'PipelineStepNotPrepared');
    }
    const total = row.items?.length ?? 1;
    const end = Math.min(total, a.from + Math.min(a.count, PIPELINE_LIMITS.itemsPerBatch));
    const ctx: ExpressionContext = { ...(await this.contextOf(run, def, step, {})), deadline: Date.now() + EVALUATION_BUDGET_MS };
    const starts: StepItemStart[] = [];
    try {
      const scope = await this.scopeOf(run, step, ctx, false);
      let bytes = 0;
      for (let i = Math.max(0, a.from); i < end; i++) {
        const start = this.itemStart(scope, row.items, i);
        bytes += Buffer.byteLength(JSON.stringify(start));
        if (starts.length > 0 && bytes > MAX_BATCH_BYTES) break;
        starts.push(start);
      }
      return starts;
    } catch (err) {
      if (err instanceof PrepareError || err instanceof ExpressionError || err instanceof RunInputError) {
        throw ApplicationFailure.nonRetryable(`step ${step.key}: ${err.message}`, 'PipelineStepInvalid');
      }
      if (err instanceof EvaluationDeadlineExceeded) {
        throw ApplicationFailure.nonRetryable(`step ${step.key}: ${overBudget(starts.length + 1)}`, 'PipelineStepInvalid');
      }
      throw err;
    }
  }

  /**
   * Records a step's final state once, with the outputs its dependants read:
   * its run's outputs, or for a `forEach` step the list of its items'
   * outputs in item order (null for an item that has none).
   */
  async settleStep(s: SettleStep): Promise<void> {
    await this.db.query(
      `UPDATE pipeline_run_steps s SET status = $3, reason = $4, error = $5, finished_at = now(), updated_at = now(),
              outputs = CASE WHEN s.items IS NULL
                THEN (SELECT r.outputs FROM runs r WHERE r.pipeline_run_id = $1 AND r.pipeline_step_key = $2 AND r.item_index IS NULL)
                ELSE (SELECT jsonb_agg(r.outputs ORDER BY i.n) FROM generate_series(0, s.item_count - 1) AS i(n)
                        LEFT JOIN runs r ON r.pipeline_run_id = $1 AND r.pipeline_step_key = $2 AND r.item_index = i.n)
              END
        WHERE s.pipeline_run_id = $1 AND s.step_key = $2 AND s.status NOT IN ${FINAL_STEP}`,
      [s.pipelineRunId, s.stepKey, s.outcome, s.reason, s.error],
    );
  }

  /**
   * Writes the run's final status once and decides its alert, as
   * `RunRecorder.planAlert` does for a task: a failure alerts unless the
   * same pipeline alerted within its window (then it is counted as
   * suppressed); the first success after an alerted failure sends a
   * recovery when asked for; a cancelled run sends nothing. Idempotent per
   * run: a retried call returns the same decision.
   */
  async closeRun(a: {
    pipelineRunId: string;
    status: 'succeeded' | 'failed' | 'cancelled';
    error: string | null;
  }): Promise<{ alert: AlertDelivery | null }> {
    return this.db.transaction(async (tx) => {
      await tx.query(
        `UPDATE pipeline_runs SET status = $2, error = $3, finished_at = now(), updated_at = now()
          WHERE id = $1 AND status NOT IN ${FINAL_RUN}`,
        [a.pipelineRunId, a.status, a.error],
      );
      return { alert: await this.planAlert(tx, a.pipelineRunId) };
    });
  }

  private async planAlert(tx: EntityManager, pipelineRunId: string): Promise<AlertDelivery | null> {
    const [run]: {
      status: string;
      tenant_id: string;
      pipeline_id: string;
      pipeline_name: string;
      pipeline_alerts: AlertSpec | null;
      tenant_alerts: AlertSpec | null;
      error: string | null;
      trigger: string;
      workflow_id: string;
      finished_at: Date | null;
    }[] = await tx.query(
      `SELECT r.status, r.tenant_id, r.pipeline_id, p.name AS pipeline_name, p.alerts AS pipeline_alerts,
              t.alert_settings AS tenant_alerts, r.error, r.trigger, r.workflow_id, r.finished_at
         FROM pipeline_runs r JOIN pipelines p ON p.id = r.pipeline_id JOIN tenants t ON t.id = r.tenant_id WHERE r.id = $1`,
      [pipelineRunId],
    );
    const spec = run?.pipeline_alerts ?? run?.tenant_alerts;
    if (!run || !spec || !['succeeded', 'failed'].includes(run.status)) return null;
    const failedSteps: { step_key: string }[] = await tx.query(
      `SELECT step_key FROM pipeline_run_steps WHERE pipeline_run_id = $1 AND status = 'failed' ORDER BY step_key`,
      [pipelineRunId],
    );
    const delivery = (kind: AlertDelivery['kind'], suppressed: number): AlertDelivery => ({
      url: spec.webhookUrl,
      kind,
      idempotencyKey: `alert-pipeline-run-${pipelineRunId}`,
      payload: {
        kind,
        tenantId: run.tenant_id,
        pipelineId: run.pipeline_id,
        pipelineName: run.pipeline_name,
        pipelineRunId,
        status: run.status,
        trigger: run.trigger,
        error: run.error,
        failedSteps: failedSteps.map((s) => s.step_key),
        workflowId: run.workflow_id,
        finishedAt: run.finished_at?.toISOString() ?? null,
        suppressedSinceLastAlert: suppressed,
      },
    });
    const alert = await planAlertState(
      tx,
      { table: 'pipeline_alert_states', key: 'pipeline_id' },
      { id: run.pipeline_id, tenantId: run.tenant_id, runId: pipelineRunId, failed: run.status === 'failed', spec },
    );
    return alert && delivery(alert.kind, alert.suppressed);
  }

  // ---------------------------------------------------------------- reads

  private async lockedRun(tx: EntityManager, id: string): Promise<RunRow | undefined> {
    const [run]: RunRow[] = await tx.query(
      `SELECT id, tenant_id, pipeline_id, pipeline_version, status, error, params, retry_of_pipeline_run_id
         FROM pipeline_runs WHERE id = $1 FOR UPDATE`,
      [id],
    );
    return run;
  }

  /** The definition the run executes: its pipeline's version when it was recorded (a retry: the retried run's). */
  private async definition(q: EntityManager, run: RunRow): Promise<PipelineDefinition> {
    const [v]: { definition: PipelineDefinition }[] = await q.query(
      `SELECT definition FROM pipeline_versions WHERE pipeline_id = $1 AND version = $2`,
      [run.pipeline_id, run.pipeline_version],
    );
    if (!v) {
      throw ApplicationFailure.nonRetryable(
        `pipeline ${run.pipeline_id} has no version ${run.pipeline_version} (pipeline run ${run.id})`,
        'PipelineVersionMissing',
      );
    }
    return v.definition;
  }

  private async stepOf(pipelineRunId: string, stepKey: string): Promise<{ run: RunRow; def: PipelineDefinition; step: PipelineStep }> {
    const [run]: RunRow[] = await this.db.query(
      `SELECT id, tenant_id, pipeline_id, pipeline_version, status, error, params, retry_of_pipeline_run_id
         FROM pipeline_runs WHERE id = $1`,
      [pipelineRunId],
    );
    if (!run) throw ApplicationFailure.nonRetryable(`pipeline run ${pipelineRunId} is not recorded`, 'PipelineRunMissing');
    const def = await this.definition(this.db.manager, run);
    const step = def.steps.find((s) => s.key === stepKey);
    if (!step) {
      throw ApplicationFailure.nonRetryable(`pipeline run ${pipelineRunId} has no step ${stepKey}`, 'PipelineStepMissing');
    }
    return { run, def, step };
  }

  /**
   * What the step's expressions see: the run's parameters and every step it
   * depends on, directly or not, with its outcome, and the stored outputs of
   * the steps its expressions name (only those: a fan-out's outputs may be
   * 1000 × 64 KiB, and the expressions cannot read others). The workflow's
   * outcomes win over stored statuses (they are the same once settled); a
   * step not final yet is left out.
   */
  private async contextOf(
    run: RunRow,
    def: PipelineDefinition,
    step: PipelineStep,
    upstream: Record<string, StepOutcome>,
  ): Promise<ExpressionContext> {
    const keys = [...upstreamOf(def.steps, step.key)];
    const rows: StepRow[] = keys.length
      ? await this.db.query(
          `SELECT step_key, status, CASE WHEN step_key = ANY($3) THEN outputs END AS outputs, NULL AS items, item_count
             FROM pipeline_run_steps WHERE pipeline_run_id = $1 AND step_key = ANY($2)`,
          [run.id, keys, [...referencedSteps(step)]],
        )
      : [];
    const steps: ExpressionContext['steps'] = {};
    for (const r of rows) {
      const status = (upstream[r.step_key] as StepOutcome | undefined) ?? r.status;
      if (status === 'pending' || status === 'running') continue;
      steps[r.step_key] = { status, outputs: r.outputs ?? null };
    }
    return { steps, params: run.params ?? {} };
  }

  /** The step's task and its tenant's shell policy; with `checked`, a missing, deleted or disabled task is a {@link PrepareError}. */
  private async scopeOf(run: RunRow, step: PipelineStep, ctx: ExpressionContext, checked: boolean): Promise<StepScope> {
    const [t]: TaskRow[] = await this.db.query(
      `SELECT id, tenant_id, name, version, executor, spec, secrets, timeout_seconds, retry_policy, shard_count, priority, enabled,
              deleted_at IS NOT NULL AS deleted
         FROM tasks WHERE id = $1 AND tenant_id = $2`,
      [step.taskId, run.tenant_id],
    );
    if (!t) throw new PrepareError(`task ${step.taskId} does not exist in this tenant`);
    if (checked && t.deleted) throw new PrepareError(`task ${t.name} was deleted`);
    if (checked && !t.enabled) throw new PrepareError(`task ${t.name} is disabled`);
    const [tenant]: { shell_policy: TenantShellPolicy | null }[] = await this.db.query(`SELECT shell_policy FROM tenants WHERE id = $1`, [
      run.tenant_id,
    ]);
    const task: RunnableTask = {
      id: t.id,
      tenantId: t.tenant_id,
      version: t.version,
      executor: t.executor,
      spec: t.spec,
      secrets: t.secrets,
      timeoutSeconds: t.timeout_seconds,
      retryPolicy: t.retry_policy,
      shardCount: t.shard_count,
      priority: t.priority,
    };
    return { run, step, ctx, task, taskName: t.name, shellPolicy: tenant?.shell_policy ?? null };
  }

  /** One item's start: overrides rendered for the item, ITEM_INDEX/ITEM for a shell item, the one run-input builder. */
  private itemStart(scope: StepScope, items: unknown[] | null, index: number): StepItemStart {
    const { run, step, task } = scope;
    const itemIndex = items === null ? null : index;
    const ctx: ExpressionContext = items === null ? scope.ctx : { ...scope.ctx, item: items[index], itemIndex: index };
    let overrides: RunOverrides = step.overrides ? renderOverrides(step.overrides, ctx) : {};
    if (items !== null && task.executor === 'shell') {
      const item = items[index];
      overrides = {
        ...overrides,
        env: { ...(overrides.env ?? {}), ITEM_INDEX: String(index), ITEM: typeof item === 'string' ? item : JSON.stringify(item) },
      };
    }
    checkRendered(overrides);
    const runId = stepRunId(run.id, step.key, itemIndex);
    const input = runInputOf(this.config, task, {
      trigger: 'pipeline',
      runId,
      overrides,
      shellPolicy: scope.shellPolicy,
      pipeline: { pipelineRunId: run.id, stepKey: step.key, itemIndex },
    }) as TaskRunInput & { runId: string };
    const bytes = Buffer.byteLength(JSON.stringify(input));
    // In the history twice (fetched, then the child's start), for up to maxParallelism children at once.
    if (bytes > PIPELINE_LIMITS.maxItemInputBytes) {
      const which = itemIndex === null ? `step ${step.key}` : `step ${step.key}, item ${itemIndex}`;
      throw new PrepareError(
        `${which}: the task-run input is ${bytes} bytes as JSON; an item's input is at most ${PIPELINE_LIMITS.maxItemInputBytes} (render less into the overrides)`,
      );
    }
    return { itemIndex, workflowId: stepRunWorkflowId(run.id, step.key, itemIndex), input, taskName: scope.taskName };
  }
}

function overBudget(items: number): string {
  return `the step's templates took more than ${EVALUATION_BUDGET_MS / 1000} s to evaluate for ${items} item${items === 1 ? '' : 's'}; simplify them`;
}

/**
 * Refuses rendered values a run could not use: a header value with CR or LF
 * (Node refuses to send it, and it could smuggle a header), an env value or
 * argument with NUL (exec refuses it). Literal ones were refused by the API.
 */
function checkRendered(o: RunOverrides): void {
  for (const [name, value] of Object.entries(o.headers ?? {})) {
    if (/[\r\n]/.test(value))
      throw new PrepareError(`overrides.headers.${name}: the rendered value has a line break, which a header cannot hold`);
  }
  for (const [name, value] of Object.entries(o.env ?? {})) {
    if (value.includes('\u0000'))
      throw new PrepareError(`overrides.env.${name}: the rendered value has a NUL character, which an environment variable cannot hold`);
  }
  (o.args ?? []).forEach((arg, i) => {
    if (arg.includes('\u0000'))
      throw new PrepareError(`overrides.args[${i}]: the rendered value has a NUL character, which an argument cannot hold`);
  });
}

/**
 * The steps a step's expressions name (`when`, a `forEach` template, its
 * overrides' templates). One that does not parse names none: evaluating it
 * fails the step with the reason.
 */
function referencedSteps(step: PipelineStep): Set<string> {
  const exprs: string[] = [];
  const collect = (get: () => string[]): void => {
    try {
      exprs.push(...get());
    } catch (err) {
      if (!(err instanceof ExpressionError)) throw err;
    }
  };
  if (step.when !== undefined) exprs.push(step.when);
  if (typeof step.forEach === 'string') collect(() => templatesIn(step.forEach as string));
  if (step.overrides) collect(() => overrideTemplates(step.overrides as RunOverrides).map((t) => t.expr));
  const keys = new Set<string>();
  for (const expr of exprs) {
    try {
      for (const r of checkExpression(expr)) if (r.kind === 'step') keys.add(r.key);
    } catch (err) {
      if (!(err instanceof ExpressionError)) throw err;
    }
  }
  return keys;
}

/** An expression error of a step's field, named by the field (`when: …`, `forEach: …`). */
function labelled<T>(field: string, run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (err instanceof ExpressionError) throw new PrepareError(`${field}: ${err.message}`);
    throw err;
  }
}

/** The step's items: its literal `forEach` list, or what its template gives; null for a step without `forEach`. */
function resolveItems(step: PipelineStep, ctx: ExpressionContext): unknown[] | null {
  if (step.forEach === undefined) return null;
  const items = typeof step.forEach === 'string' ? labelled('forEach', () => renderValue(step.forEach as string, ctx)) : step.forEach;
  if (!Array.isArray(items)) {
    throw new PrepareError(`forEach: ${JSON.stringify(step.forEach)} gave ${describe(items)}, not a list`);
  }
  if (items.length > PIPELINE_LIMITS.maxItemsPerStep) {
    throw new PrepareError(`forEach: the list has ${items.length} items; a step runs at most ${PIPELINE_LIMITS.maxItemsPerStep}`);
  }
  return items;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)}`;
  if (typeof value === 'object') return 'a map';
  return `the ${typeof value} ${String(value)}`;
}
