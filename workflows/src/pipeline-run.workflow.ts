import {
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowCancellationType,
  ParentClosePolicy,
  condition,
  continueAsNew,
  isCancellation,
  proxyLocalActivities,
  startChild,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import { SearchAttributeType, WorkflowExecutionAlreadyStartedError, defineSearchAttributeKey } from '@temporalio/common';
import type { PipelineActivities } from '@task-scheduler/activities';
import type {
  PipelineCarriedState,
  PipelineRunInput,
  PipelineRunPlan,
  PlannedStep,
  StepItemStart,
  StepOutcome,
  StepReason,
} from '@task-scheduler/contracts';
import {
  PIPELINE_LIMITS,
  SCHEDULE_SEARCH_ATTRIBUTES,
  SEARCH_ATTRIBUTES,
  combineItems,
  decideStep,
  pipelineOutcome,
} from '@task-scheduler/contracts';
import type { alertDeliveryWorkflow } from './alert-delivery.workflow';
import type { taskRunWorkflow } from './task-run.workflow';

/** What a pipeline run's workflow returns when it did not end failed or cancelled. */
export interface PipelineRunResult {
  pipelineRunId: string;
  /** `refused`: its pipeline is gone (recorded cancelled); `duplicate`: another workflow holds this schedule fire. */
  status: 'succeeded' | 'refused' | 'duplicate';
  duplicateOf?: string;
}

/** Same contract as the task-run workflow's records: local, retried for hours, so an outage loses no state. */
const records = proxyLocalActivities<PipelineActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '60s', maximumAttempts: 1000 },
});

/** Item inputs fetched per call (the activity's cap); fewer when the parallelism is lower, so few go to waste. */
const ITEM_BATCH = 50;

const SCHEDULED_START_TIME = defineSearchAttributeKey(SCHEDULE_SEARCH_ATTRIBUTES.scheduledStartTime, SearchAttributeType.DATETIME);
const keyword = (name: string) => defineSearchAttributeKey(name, SearchAttributeType.KEYWORD);
const SA = {
  tenantId: keyword(SEARCH_ATTRIBUTES.tenantId),
  taskId: keyword(SEARCH_ATTRIBUTES.taskId),
  runId: keyword(SEARCH_ATTRIBUTES.runId),
  trigger: keyword(SEARCH_ATTRIBUTES.trigger),
  pipelineRunId: keyword(SEARCH_ATTRIBUTES.pipelineRunId),
};

/** A step that was prepared to run: its items, those started, and the outcomes of those that ended. */
interface ActiveStep {
  key: string;
  itemCount: number;
  fanOut: boolean;
  /** The next item to start. */
  next: number;
  outcomes: (StepOutcome | undefined)[];
  /** Inputs fetched but not started yet. */
  buffer: StepItemStart[];
  running: number;
  /** Why no further item starts (the step is then cancelled unless its started items say otherwise). */
  stopped: Extract<StepReason, 'fail_fast' | 'pipeline_cancelled'> | null;
  firstError: string | null;
  failedItems: number;
}

interface ItemEnd {
  workflowId: string;
  key: string;
  index: number;
  outcome: StepOutcome;
  /** What a failed run said. */
  error: string | null;
}

/** A child's end as an item outcome; never rejects. */
async function runItem(start: StepItemStart, pipelineRunId: string): Promise<Omit<ItemEnd, 'key' | 'index'>> {
  const { input } = start;
  const ended = (outcome: StepOutcome, error: string | null) => ({ workflowId: start.workflowId, outcome, error });
  try {
    const child = await startChild<typeof taskRunWorkflow>('taskRunWorkflow', {
      workflowId: start.workflowId,
      args: [input],
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      // A cancelled step is final only once its process is gone (fail_fast must kill it, not orphan it).
      cancellationType: ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
      priority: { fairnessKey: input.tenantId },
      typedSearchAttributes: [
        { key: SA.tenantId, value: input.tenantId },
        { key: SA.taskId, value: input.taskId },
        { key: SA.runId, value: input.runId },
        { key: SA.trigger, value: 'pipeline' },
        { key: SA.pipelineRunId, value: pipelineRunId },
      ],
      ...(start.taskName ? { memo: { taskName: start.taskName } } : {}),
    });
    const result = await child.result();
    // `duplicate`: the child found its run already final (its task was disabled when it started: recorded cancelled).
    return ended(result.status === 'succeeded' ? 'succeeded' : 'cancelled', null);
  } catch (err) {
    if (isCancellation(err)) return ended('cancelled', null);
    // A timed-out run is a failed step; the cause names what the run said.
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
    return ended('failed', cause instanceof Error ? cause.message : String(cause));
  }
}

function errorOf(step: ActiveStep, outcome: StepOutcome): string | null {
  if (outcome !== 'failed') return null;
  if (!step.fanOut) return step.firstError;
  const counted = `${step.failedItems} of ${step.itemCount} items failed`;
  return step.firstError ? `${counted}; ${step.firstError}` : counted;
}

/**
 * One pipeline run: opens its record, then runs its steps as a DAG of
 * task-run children — a step once all its upstream steps are final, as its
 * trigger rule and the failure policy decide (libs/contracts pipeline.ts,
 * docs/pipelines.md), at most `maxParallelism` children at once over all
 * steps and items — and closes the record with the one final-status rule.
 * It continues as new at a barrier (nothing running) when its history
 * grows, carrying only outcomes: inputs and outputs stay in PostgreSQL.
 * The workflow ends failed (or cancelled) when the pipeline run does.
 */
export async function pipelineRunWorkflow(input: PipelineRunInput): Promise<PipelineRunResult> {
  const info = workflowInfo();
  let carried: PipelineCarriedState;
  if (input.carried) {
    carried = input.carried;
  } else {
    const drawn = !input.pipelineRunId;
    const pipelineRunId = input.pipelineRunId ?? uuid4();
    // A schedule cannot name the run in advance: make the drawn id findable in the Temporal UI.
    if (drawn) upsertSearchAttributes([{ key: SA.pipelineRunId, value: pipelineRunId }]);
    const scheduledAt = input.scheduleId ? (info.typedSearchAttributes.get(SCHEDULED_START_TIME)?.toISOString() ?? null) : null;
    // Not cancellable: a cancel arriving this early must still find the run recorded, so it can be closed `cancelled`.
    const opened = await CancellationScope.nonCancellable(() =>
      records.openPipelineRun({
        pipelineRunId,
        drawn,
        tenantId: input.tenantId,
        pipelineId: input.pipelineId,
        scheduleId: input.scheduleId ?? null,
        scheduledAt,
        params: input.params ?? null,
        trigger: input.trigger,
        workflowId: info.workflowId,
        temporalRunId: info.runId,
      }),
    );
    if (opened.kind === 'refused') return { pipelineRunId, status: 'refused' };
    if (opened.kind === 'duplicate') return { pipelineRunId, status: 'duplicate', duplicateOf: opened.duplicateOf };
    const settled: PipelineCarriedState['settled'] = {};
    for (const key of opened.plan.reused) settled[key] = { outcome: 'succeeded', reason: 'reused', error: null };
    carried = { pipelineRunId: opened.plan.pipelineRunId, plan: opened.plan, settled, items: {}, failing: false };
  }

  const run = new PipelineScheduler(carried, input.continueAsNewAfterEvents ?? PIPELINE_LIMITS.continueAsNewAfterEvents);
  const ended = await run.execute();
  if (ended === 'barrier') {
    return continueAsNew<typeof pipelineRunWorkflow>({ ...input, pipelineRunId: carried.pipelineRunId, carried: run.carried() });
  }

  const { pipelineRunId, plan } = carried;
  const outcome = pipelineOutcome(plan.steps, run.settled, run.cancellation !== null);
  await CancellationScope.nonCancellable(async () => {
    const { alert } = await records.closePipelineRun({ pipelineRunId, status: outcome.status, error: outcome.error });
    if (alert && input.httpTaskQueue) {
      try {
        await startChild<typeof alertDeliveryWorkflow>('alertDeliveryWorkflow', {
          workflowId: `alert-${pipelineRunId}`,
          args: [alert, input.httpTaskQueue],
          parentClosePolicy: ParentClosePolicy.ABANDON,
        });
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      }
    }
  });
  if (run.cancellation !== null) throw run.cancellation;
  if (outcome.status === 'failed') throw ApplicationFailure.nonRetryable(`pipeline run failed: ${outcome.error}`, 'PipelineFailed');
  return { pipelineRunId, status: 'succeeded' };
}

/**
 * The scheduling state of one workflow run. Only `execute`'s loop changes
 * it; a child's end is queued by its callback and applied by the loop, so
 * every decision sees one consistent state.
 */
class PipelineScheduler {
  readonly settled: PipelineCarriedState['settled'];
  /** The cancellation of the workflow, once it was cancelled. */
  cancellation: unknown = null;
  private readonly plan: PipelineRunPlan;
  private readonly pipelineRunId: string;
  private readonly active = new Map<string, ActiveStep>();
  private readonly running = new Map<string, CancellationScope>();
  private readonly ended: ItemEnd[] = [];
  private failing: boolean;
  /** Something was settled or an item ended in this workflow run: a barrier now cannot repeat forever. */
  private progressed = false;
  private atBarrier = false;

  constructor(
    private readonly state: PipelineCarriedState,
    private readonly continueAsNewAfterEvents: number,
  ) {
    this.plan = state.plan;
    this.pipelineRunId = state.pipelineRunId;
    this.settled = { ...state.settled };
    this.failing = state.failing;
  }

  /** Runs the steps until every one is final (`done`) or a barrier for continue-as-new is reached. */
  async execute(): Promise<'done' | 'barrier'> {
    try {
      await this.resume();
      for (;;) {
        this.applyEnded();
        await this.settleDecided();
        if (this.allSettled()) return 'done';
        if (!this.atBarrier && this.progressed && this.historyIsLong()) this.atBarrier = true;
        if (this.atBarrier && this.running.size === 0) return 'barrier';
        if (!this.atBarrier && (await this.launch())) continue;
        if (this.running.size === 0) {
          throw ApplicationFailure.nonRetryable(`pipeline run ${this.pipelineRunId} has steps that can never start`, 'PipelineStalled');
        }
        await condition(() => this.ended.length > 0);
      }
    } catch (err) {
      if (!isCancellation(err)) throw err;
      this.cancellation = err;
    }
    // Cancelled: the children's scopes are inside the workflow's, so each got the cancel; wait for all of them.
    await CancellationScope.nonCancellable(async () => {
      for (const step of this.active.values()) this.stop(step, 'pipeline_cancelled');
      for (;;) {
        this.applyEnded();
        if (this.running.size === 0) break;
        await condition(() => this.ended.length > 0);
      }
      await this.settleDecided();
    });
    return 'done';
  }

  /** The state the next workflow run starts from (at a barrier: no child is running). */
  carried(): PipelineCarriedState {
    const items: PipelineCarriedState['items'] = {};
    for (const step of this.active.values()) items[step.key] = step.outcomes.slice(0, step.next) as StepOutcome[];
    return { pipelineRunId: this.pipelineRunId, plan: this.plan, settled: this.settled, items, failing: this.failing };
  }

  /** Steps that were in progress at the barrier carry on from their next item. */
  private async resume(): Promise<void> {
    for (const [key, outcomes] of Object.entries(this.state.items)) {
      const step = this.plan.steps.find((s) => s.key === key) as PlannedStep;
      // Preparing again returns what the first preparation stored (the activity is idempotent).
      const prepared = await this.prepare(step);
      if (prepared) {
        prepared.next = outcomes.length;
        outcomes.forEach((o, i) => (prepared.outcomes[i] = o));
        prepared.failedItems = outcomes.filter((o) => o === 'failed').length;
      }
    }
  }

  private historyIsLong(): boolean {
    const now = workflowInfo();
    return (
      now.historyLength > this.continueAsNewAfterEvents ||
      now.historySize > PIPELINE_LIMITS.continueAsNewAfterBytes ||
      now.continueAsNewSuggested
    );
  }

  private allSettled(): boolean {
    return this.plan.steps.every((s) => this.settled[s.key] !== undefined);
  }

  private upstreamOf(step: PlannedStep): Record<string, StepOutcome> | null {
    const upstream: Record<string, StepOutcome> = {};
    for (const d of step.dependsOn) {
      const s = this.settled[d];
      if (!s) return null;
      upstream[d] = s.outcome;
    }
    return upstream;
  }

  private decide(step: PlannedStep, upstream: Record<string, StepOutcome>): ReturnType<typeof decideStep> {
    return decideStep(step, Object.values(upstream), {
      failing: this.failing,
      policy: this.plan.failurePolicy,
      cancelled: this.cancellation !== null,
    });
  }

  /** Applies the children's ends queued since the last call. */
  private applyEnded(): void {
    for (const end of this.ended.splice(0)) {
      this.running.delete(end.workflowId);
      const step = this.active.get(end.key) as ActiveStep;
      step.running--;
      step.outcomes[end.index] = end.outcome;
      if (end.outcome === 'failed') {
        step.failedItems++;
        step.firstError ??= step.fanOut ? `item ${end.index}: ${end.error}` : end.error;
        // A failed item fails its step whatever its siblings do: fail_fast need not wait for them.
        this.markFailing();
      }
      this.progressed = true;
    }
  }

  /**
   * Settles, until nothing changes, every step whose fate is known without
   * starting anything: active steps with nothing left to run, and pending
   * steps whose upstream is final and whose rule (or the failure policy, or
   * the cancellation) says they do not run.
   */
  private async settleDecided(): Promise<void> {
    for (let changed = true; changed;) {
      changed = false;
      for (const step of this.plan.steps) {
        if (this.settled[step.key]) continue;
        const active = this.active.get(step.key);
        if (active) {
          if (active.running > 0 || (active.next < active.itemCount && !active.stopped)) continue;
          // Items never started count as cancelled: the step was stopped before them.
          const outcomes = active.outcomes.map((o) => o ?? 'cancelled');
          const outcome = combineItems(outcomes);
          const reason: StepReason = outcome === 'cancelled' && active.stopped ? active.stopped : 'ran';
          await this.settle(step.key, outcome, reason, errorOf(active, outcome));
          changed = true;
          continue;
        }
        const upstream = this.upstreamOf(step);
        if (!upstream) continue;
        const decision = this.decide(step, upstream);
        if (decision.action === 'settle') {
          await this.settle(step.key, decision.outcome, decision.reason, null);
          changed = true;
        }
      }
    }
  }

  /**
   * Starts children while there is room, in step definition order: items of
   * active steps, and ready steps (prepared first). True when a preparation
   * settled a step, so the caller settles what follows before going on.
   */
  private async launch(): Promise<boolean> {
    for (const step of this.plan.steps) {
      if (this.room() === 0) return false;
      if (this.settled[step.key]) continue;
      let active = this.active.get(step.key) ?? null;
      if (!active) {
        const upstream = this.upstreamOf(step);
        if (!upstream || this.decide(step, upstream).action !== 'run') continue;
        active = await this.prepare(step);
        if (!active) return true;
      }
      await this.startItems(active);
    }
    return false;
  }

  private room(): number {
    return Math.max(0, this.plan.maxParallelism - this.running.size);
  }

  /** Prepares a step to run; a step that cannot (skipped, failed) is settled, and null returned. */
  private async prepare(step: PlannedStep): Promise<ActiveStep | null> {
    const upstream = this.upstreamOf(step) as Record<string, StepOutcome>;
    const prep = await records.prepareStep({ pipelineRunId: this.pipelineRunId, stepKey: step.key, upstream });
    if (prep.action === 'skip') {
      await this.settle(step.key, 'skipped', prep.reason, null);
      return null;
    }
    if (prep.action === 'fail') {
      await this.settle(step.key, 'failed', 'prepare_failed', prep.error);
      return null;
    }
    if (prep.itemCount === 0) {
      await this.settle(step.key, 'skipped', 'empty_list', null);
      return null;
    }
    const active: ActiveStep = {
      key: step.key,
      itemCount: prep.itemCount,
      fanOut: prep.fanOut,
      next: 0,
      outcomes: new Array<StepOutcome | undefined>(prep.itemCount).fill(undefined),
      buffer: [],
      running: 0,
      stopped: null,
      firstError: null,
      failedItems: 0,
    };
    this.active.set(step.key, active);
    return active;
  }

  private async startItems(step: ActiveStep): Promise<void> {
    while (this.room() > 0 && step.next < step.itemCount && !step.stopped) {
      if (step.buffer.length === 0) {
        const count = Math.min(ITEM_BATCH, this.plan.maxParallelism, step.itemCount - step.next);
        step.buffer = await records.stepItems({ pipelineRunId: this.pipelineRunId, stepKey: step.key, from: step.next, count });
        if (step.buffer.length === 0) {
          throw ApplicationFailure.nonRetryable(`step ${step.key} has no item ${step.next}`, 'PipelineStalled');
        }
        // A fail_fast stop may have come while fetching.
        if (step.stopped) return;
      }
      const start = step.buffer.shift() as StepItemStart;
      const index = step.next++;
      this.startChild(step, start, index);
    }
  }

  private startChild(step: ActiveStep, start: StepItemStart, index: number): void {
    // Its own scope, so fail_fast can cancel this child alone; a child of the workflow's, so a cancel reaches it.
    const scope = new CancellationScope();
    this.running.set(start.workflowId, scope);
    step.running++;
    void scope
      .run(() => runItem(start, this.pipelineRunId))
      .then((end) => {
        this.ended.push({ ...end, key: step.key, index });
      });
  }

  private stop(step: ActiveStep, why: NonNullable<ActiveStep['stopped']>): void {
    step.stopped ??= why;
    step.buffer = [];
  }

  private async settle(key: string, outcome: StepOutcome, reason: StepReason, error: string | null): Promise<void> {
    // Not cancellable: what the workflow holds settled must be what PostgreSQL holds.
    await CancellationScope.nonCancellable(() =>
      records.settleStep({ pipelineRunId: this.pipelineRunId, stepKey: key, outcome, reason, error }),
    );
    this.settled[key] = { outcome, reason, error };
    this.active.delete(key);
    this.progressed = true;
    if (outcome === 'failed') this.markFailing();
  }

  /**
   * The first failure (a failed step, or the first failed item of a fan-out):
   * under fail_fast every running child is cancelled and no further item starts.
   */
  private markFailing(): void {
    if (this.failing) return;
    this.failing = true;
    if (this.plan.failurePolicy !== 'fail_fast') return;
    for (const step of this.active.values()) this.stop(step, 'fail_fast');
    for (const scope of this.running.values()) scope.cancel();
  }
}
