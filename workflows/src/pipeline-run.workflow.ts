import {
  ActivityFailure,
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
  PipelineRunOpened,
  PipelineRunPlan,
  PlannedStep,
  StepItemStart,
  StepOutcome,
  StepPreparation,
  StepReason,
  TaskRunResult,
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
  /**
   * Why no further item starts: `fail_fast` and `pipeline_cancelled` make the step cancelled unless its
   * started items say otherwise; `prepare_failed` (the next items' inputs could not be built) fails it.
   */
  stopped: Extract<StepReason, 'fail_fast' | 'pipeline_cancelled' | 'prepare_failed'> | null;
  /** Why its items could not be started (`prepare_failed`); null: the pipeline run's own error says it. */
  startError: string | null;
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
  /** The child ended in a way no item can: the pipeline run cannot go on. */
  broken?: unknown;
}

/** The error of an item whose run refused to start (the child's result has no text of its own). */
const REFUSED_ITEM = 'the task was disabled or deleted before this item started; nothing ran';

/** A child's end as an item outcome; never rejects. */
async function runItem(start: StepItemStart, pipelineRunId: string): Promise<Omit<ItemEnd, 'key' | 'index'>> {
  const { input } = start;
  const ended = (outcome: StepOutcome, error: string | null) => ({ workflowId: start.workflowId, outcome, error });
  let result: TaskRunResult;
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
    result = await child.result();
  } catch (err) {
    if (isCancellation(err)) return ended('cancelled', null);
    // A timed-out run is a failed step; the cause names what the run said.
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
    return ended('failed', cause instanceof Error ? cause.message : String(cause));
  }
  // A run that did not succeed ends its workflow failed or cancelled (above); it returns only these two.
  switch (result.status) {
    case 'succeeded':
      return ended('succeeded', null);
    case 'duplicate':
      // Its task was disabled or deleted when the child started: the run was recorded cancelled and nothing ran.
      // The item did not do its work, so it fails (and triggers fail_fast) like any failed run.
      return ended('failed', REFUSED_ITEM);
    default:
      throw ApplicationFailure.nonRetryable(
        `run ${input.runId} of ${start.workflowId} returned status ${result.status}`,
        'PipelineStalled',
      );
  }
}

function errorOf(step: ActiveStep, outcome: StepOutcome): string | null {
  if (outcome !== 'failed') return null;
  if (!step.fanOut) return step.firstError;
  const counted = `${step.failedItems} of ${step.itemCount} items failed`;
  return step.firstError ? `${counted}; ${step.firstError}` : counted;
}

/** What a record failed with: a local activity fails with the activity's own failure, or one an ActivityFailure wraps. */
function causeOf(err: unknown): unknown {
  return err instanceof ActivityFailure && err.cause ? err.cause : err;
}

/** The message of a start whose input no longer builds (the recorder's `PipelineStepInvalid`), else null. */
function invalidStart(err: unknown): string | null {
  const failure = causeOf(err);
  return failure instanceof ApplicationFailure && failure.type === 'PipelineStepInvalid' ? failure.message : null;
}

/** A record's failure (it failed for good) as the error that stops the run, naming the record; a cancellation stays one. */
function recordFailed(record: keyof PipelineActivities, err: unknown): unknown {
  if (isCancellation(err)) return err;
  const failure = causeOf(err);
  return ApplicationFailure.create({
    message: `${record} failed: ${failure instanceof Error ? failure.message : String(failure)}`,
    type: 'PipelineRecordFailed',
    nonRetryable: true,
    cause: failure instanceof Error ? failure : undefined,
  });
}

/** What stopped the pipeline workflow, as the error of its run and of the steps it could not finish. */
function haltErrorOf(err: unknown): string {
  return `the pipeline run stopped on an error: ${err instanceof Error ? err.message : String(err)}`;
}

/**
 * Closes the run with its final status, and starts its alert's delivery when one is due. Not cancellable:
 * the record must be final whatever the workflow was asked meanwhile.
 */
async function closeRun(
  pipelineRunId: string,
  status: 'succeeded' | 'failed' | 'cancelled',
  error: string | null,
  httpTaskQueue: string | undefined,
): Promise<void> {
  await CancellationScope.nonCancellable(async () => {
    const { alert } = await records.closePipelineRun({ pipelineRunId, status, error });
    if (alert && httpTaskQueue) {
      try {
        await startChild<typeof alertDeliveryWorkflow>('alertDeliveryWorkflow', {
          workflowId: `alert-${pipelineRunId}`,
          args: [alert, httpTaskQueue],
          parentClosePolicy: ParentClosePolicy.ABANDON,
        });
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      }
    }
  });
}

/**
 * The failure a pipeline workflow ends with when an error stopped it (`halt`: its run's error): the run
 * is closed `failed` first, so it never stays `running`. A close that fails as well leaves the record
 * as it is (PostgreSQL is out of reach); the workflow fails all the same, with the first error as cause.
 */
async function haltedRun(
  pipelineRunId: string,
  err: unknown,
  halt: string,
  httpTaskQueue: string | undefined,
): Promise<ApplicationFailure> {
  try {
    await closeRun(pipelineRunId, 'failed', halt, httpTaskQueue);
  } catch {
    // the failure below names the first error, which is what went wrong
  }
  return ApplicationFailure.create({
    message: `pipeline run failed: ${halt}`,
    type: 'PipelineFailed',
    nonRetryable: true,
    cause: err instanceof Error ? err : undefined,
  });
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
    let opened: PipelineRunOpened;
    try {
      // Not cancellable: a cancel arriving this early must still find the run recorded, so it can be closed `cancelled`.
      opened = await CancellationScope.nonCancellable(() =>
        records.openPipelineRun({
          pipelineRunId,
          drawn,
          tenantId: input.tenantId,
          pipelineId: input.pipelineId,
          scheduleId: input.scheduleId ?? null,
          scheduledAt,
          params: input.params ?? null,
          trigger: input.trigger,
          // What the API recorded, for the case its commit failed after the start: the row is then written here.
          pipelineVersion: input.pipelineVersion ?? null,
          retryOfPipelineRunId: input.retryOfPipelineRunId ?? null,
          workflowId: info.workflowId,
          temporalRunId: info.runId,
        }),
      );
    } catch (err) {
      // E.g. its pipeline version is gone: the row the API recorded `queued` must not stay so.
      const failure = recordFailed('openPipelineRun', err);
      throw await haltedRun(pipelineRunId, failure, haltErrorOf(failure), input.httpTaskQueue);
    }
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
  if (run.halt !== null) throw await haltedRun(pipelineRunId, run.failure, run.halt, input.httpTaskQueue);
  const outcome = pipelineOutcome(plan.steps, run.settled, run.cancellation !== null);
  await closeRun(pipelineRunId, outcome.status, outcome.error, input.httpTaskQueue);
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
  /** The error that stopped the run (anything but its cancellation), and the run's error saying so. */
  failure: unknown = null;
  halt: string | null = null;
  private readonly plan: PipelineRunPlan;
  private readonly pipelineRunId: string;
  private readonly active = new Map<string, ActiveStep>();
  private readonly running = new Map<string, CancellationScope>();
  private readonly ended: ItemEnd[] = [];
  private failing: boolean;
  /** Something was settled or an item ended in this workflow run: a barrier now cannot repeat forever. */
  private progressed = false;
  private atBarrier = false;
  /** The step whose preparation stopped the run: it is the one that ends `failed` for it. */
  private blamed: string | null = null;
  /** What a child ended with that no item can end with (see runItem). */
  private broken: unknown = null;
  /** A settle failed for good: settling more would only fail again. */
  private settleFailed = false;
  /** Bytes of the child starts made in the current workflow task (it is known by its history length). */
  private unrecorded = { historyLength: -1, bytes: 0 };

  constructor(
    private readonly state: PipelineCarriedState,
    private readonly continueAsNewAfterEvents: number,
  ) {
    this.plan = state.plan;
    this.pipelineRunId = state.pipelineRunId;
    this.settled = { ...state.settled };
    this.failing = state.failing;
  }

  /**
   * Runs the steps until every one is final (`done`) or a barrier for continue-as-new is reached. A
   * cancellation, or any error (a record that failed for good, a stalled plan, a bug), ends every step
   * here: the run must never stay `running` because its workflow failed.
   */
  async execute(): Promise<'done' | 'barrier'> {
    try {
      await this.resume();
      for (;;) {
        this.applyEnded();
        if (this.broken !== null) throw this.broken;
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
      if (isCancellation(err)) this.cancellation = err;
      else this.stopOn(err);
    }
    await CancellationScope.nonCancellable(() => this.windDown());
    return 'done';
  }

  /** The state the next workflow run starts from (at a barrier: no child is running). */
  carried(): PipelineCarriedState {
    const items: PipelineCarriedState['items'] = {};
    const errors: NonNullable<PipelineCarriedState['errors']> = {};
    for (const step of this.active.values()) {
      items[step.key] = step.outcomes.slice(0, step.next) as StepOutcome[];
      errors[step.key] = step.firstError;
    }
    return { pipelineRunId: this.pipelineRunId, plan: this.plan, settled: this.settled, items, errors, failing: this.failing };
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
        // Histories carried before errors were carried have none: the step's error then only counts its items.
        prepared.firstError = this.state.errors?.[key] ?? null;
      }
    }
  }

  private stopOn(err: unknown): void {
    this.failure = err;
    this.halt = haltErrorOf(err);
  }

  /**
   * After a cancellation or an error: stops every step, waits until no child
   * runs (a cancel reached each child, whose scope is inside the workflow's;
   * after an error they are cancelled here), and settles every step not
   * final (`cancelled`, `pipeline_cancelled`, with the error for an error).
   */
  private async windDown(): Promise<void> {
    for (const step of this.active.values()) this.stop(step, 'pipeline_cancelled');
    if (this.halt !== null) for (const scope of this.running.values()) scope.cancel();
    for (;;) {
      this.applyEnded();
      if (this.running.size === 0) break;
      await condition(() => this.ended.length > 0);
    }
    // The close records what it can.
    if (this.settleFailed) return;
    try {
      await this.settleDecided();
    } catch (err) {
      // A cancelled run whose steps cannot be settled is closed failed, with the error, rather than cancelled.
      if (this.halt === null) this.stopOn(err);
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
      // A run stopped by an error starts nothing more either.
      cancelled: this.cancellation !== null || this.halt !== null,
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
      if (end.broken !== undefined) this.broken ??= end.broken;
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
          if (active.stopped === 'prepare_failed') {
            await this.settle(step.key, 'failed', 'prepare_failed', active.startError ?? this.halt);
          } else {
            // Items never started count as cancelled: the step was stopped before them.
            const outcomes = active.outcomes.map((o) => o ?? 'cancelled');
            const outcome = combineItems(outcomes);
            const reason: StepReason = outcome === 'cancelled' && active.stopped ? active.stopped : 'ran';
            await this.settle(step.key, outcome, reason, reason === 'pipeline_cancelled' ? this.halt : errorOf(active, outcome));
          }
          changed = true;
          continue;
        }
        const upstream = this.upstreamOf(step);
        if (!upstream) continue;
        if (this.halt !== null && this.blamed === step.key) {
          await this.settle(step.key, 'failed', 'prepare_failed', this.halt);
          changed = true;
          continue;
        }
        const decision = this.decide(step, upstream);
        if (decision.action === 'settle') {
          await this.settle(step.key, decision.outcome, decision.reason, decision.reason === 'pipeline_cancelled' ? this.halt : null);
          changed = true;
        }
      }
    }
  }

  /**
   * Starts children while there is room, in step definition order: items of
   * active steps, and ready steps (prepared first). True when a preparation
   * settled a step, or a refused batch stopped one, so the caller settles what
   * follows before going on (a stopped step with nothing running is settled
   * then, not taken for a stall).
   */
  private async launch(): Promise<boolean> {
    let stopped = false;
    for (const step of this.plan.steps) {
      if (this.room() === 0 || this.atBarrier) return stopped;
      if (this.settled[step.key]) continue;
      let active = this.active.get(step.key) ?? null;
      if (!active) {
        const upstream = this.upstreamOf(step);
        if (!upstream || this.decide(step, upstream).action !== 'run') continue;
        active = await this.prepare(step);
        if (!active) return true;
      }
      if (await this.startItems(active)) stopped = true;
    }
    return stopped;
  }

  private room(): number {
    return Math.max(0, this.plan.maxParallelism - this.running.size);
  }

  /** Prepares a step to run; a step that cannot (skipped, failed) is settled, and null returned. */
  private async prepare(step: PlannedStep): Promise<ActiveStep | null> {
    const upstream = this.upstreamOf(step) as Record<string, StepOutcome>;
    let prep: StepPreparation;
    try {
      prep = await records.prepareStep({ pipelineRunId: this.pipelineRunId, stepKey: step.key, upstream });
    } catch (err) {
      const invalid = invalidStart(err);
      if (invalid === null) {
        if (!isCancellation(err)) this.blamed = step.key;
        throw recordFailed('prepareStep', err);
      }
      prep = { action: 'fail', error: invalid };
    }
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
      startError: null,
      firstError: null,
      failedItems: 0,
    };
    this.active.set(step.key, active);
    return active;
  }

  /** True when a refused batch stopped the step (its items not started cannot start). */
  private async startItems(step: ActiveStep): Promise<boolean> {
    while (this.room() > 0 && step.next < step.itemCount && !step.stopped && !this.atBarrier) {
      if (step.buffer.length === 0) {
        // The recorder may return fewer than asked (it caps a batch by size); the next call goes on from there.
        const count = Math.min(PIPELINE_LIMITS.itemsPerBatch, this.plan.maxParallelism, step.itemCount - step.next);
        let batch: StepItemStart[];
        try {
          batch = await records.stepItems({ pipelineRunId: this.pipelineRunId, stepKey: step.key, from: step.next, count });
        } catch (err) {
          const invalid = invalidStart(err);
          if (invalid === null) {
            if (!isCancellation(err)) this.stop(step, 'prepare_failed');
            throw recordFailed('stepItems', err);
          }
          // E.g. its task changed executor since it was prepared: what has not started cannot, so the step
          // fails (a failure like any for the policy); items already running end as they do.
          step.startError = step.fanOut && step.next > 0 ? `items ${step.next} and after could not start: ${invalid}` : invalid;
          this.stop(step, 'prepare_failed');
          this.markFailing();
          return true;
        }
        if (batch.length === 0) {
          this.stop(step, 'prepare_failed');
          throw ApplicationFailure.nonRetryable(`step ${step.key} has no item ${step.next}`, 'PipelineStalled');
        }
        step.buffer = batch;
        // A fail_fast stop may have come while fetching.
        if (step.stopped) return false;
      }
      const start = step.buffer.shift() as StepItemStart;
      const index = step.next++;
      this.startChild(step, start, index);
    }
    return false;
  }

  private startChild(step: ActiveStep, start: StepItemStart, index: number): void {
    // Its own scope, so fail_fast can cancel this child alone; a child of the workflow's, so a cancel reaches it.
    const scope = new CancellationScope();
    this.running.set(start.workflowId, scope);
    step.running++;
    void scope
      .run(() => runItem(start, this.pipelineRunId))
      .then(
        (end) => {
          this.ended.push({ ...end, key: step.key, index });
        },
        (err: unknown) => {
          const error = err instanceof Error ? err.message : String(err);
          this.ended.push({ workflowId: start.workflowId, key: step.key, index, outcome: 'failed', error, broken: err });
        },
      );
    this.countStarted(start);
  }

  /**
   * Stops launching once this workflow task's starts would take the history
   * past its byte limit. `historySize` is the size when the task began; each
   * start made since is in the history twice once the task completes (the
   * stepItems marker that fetched it, and the child's start event), and up
   * to maxParallelism children may start in one task.
   */
  private countStarted(start: StepItemStart): void {
    const now = workflowInfo();
    if (this.unrecorded.historyLength !== now.historyLength) this.unrecorded = { historyLength: now.historyLength, bytes: 0 };
    // JSON of the same value is the same text on replay: the decision is deterministic.
    this.unrecorded.bytes += new TextEncoder().encode(JSON.stringify(start)).byteLength;
    if (now.historySize + 2 * this.unrecorded.bytes >= PIPELINE_LIMITS.continueAsNewAfterBytes) this.atBarrier = true;
  }

  private stop(step: ActiveStep, why: NonNullable<ActiveStep['stopped']>): void {
    step.stopped ??= why;
    step.buffer = [];
  }

  private async settle(key: string, outcome: StepOutcome, reason: StepReason, error: string | null): Promise<void> {
    try {
      // Not cancellable: what the workflow holds settled must be what PostgreSQL holds.
      await CancellationScope.nonCancellable(() =>
        records.settleStep({ pipelineRunId: this.pipelineRunId, stepKey: key, outcome, reason, error }),
      );
    } catch (err) {
      this.settleFailed = true;
      throw recordFailed('settleStep', err);
    }
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
