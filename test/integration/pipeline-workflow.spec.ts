/* The pipeline workflow's scheduling on a real Temporal dev server, without PostgreSQL: its records
 * are in-memory fakes of PipelineActivities over a plan per test, and its children are a stub
 * task-run workflow (test/support/pipeline-stub-workflows.ts) that ends as its input says. Checked
 * against the reference evaluator of docs/pipelines.md (test/support/pipeline-reference.ts). What the
 * real recorder does against PostgreSQL is test/integration/pipeline-recorder.spec.ts. */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import fc from 'fast-check';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import type { WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { DefaultLogger, NativeConnection, Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';
import type { InjectedSinks } from '@temporalio/worker';
import type { FailurePolicy, PipelineRunInput, PipelineRunOpened, StepItemStart, StepOutcome, StepReason } from '@task-scheduler/contracts';
import {
  FAILURE_AWARE_RULES,
  SEARCH_ATTRIBUTES,
  TRIGGER_RULES,
  pipelineOutcome,
  pipelineRunWorkflowId,
  stepRunWorkflowId,
} from '@task-scheduler/contracts';
import type { PipelineActivities } from '@task-scheduler/activities';
import { referencePipeline } from '../support/pipeline-reference';
import { eventually } from '../support/eventually';
import { checkReplayAndRecord } from '../support/replay-fixtures';
import type { ReferenceStep, WouldBe } from '../support/pipeline-reference';
import type { StubSinks } from '../support/pipeline-stub-workflows';

const TASK_QUEUE = `pipeline-workflow-${process.pid}`;
const RESULT_DEADLINE_MS = 60_000;

interface FakeStep extends ReferenceStep {
  wouldBe: WouldBe;
  /** How long each item's child sleeps before ending. */
  sleepMs: number;
  /** Its children answer so instead of ending as `wouldBe` says (`disabled`: result `duplicate`; see the stub). */
  answer?: 'disabled' | 'unexpected';
  /** stepItems refuses (PipelineStepInvalid) a batch reaching this item, as when the task changed since preparing. */
  invalidFrom?: number;
}

interface FakePlan {
  pipelineId: string;
  steps: FakeStep[];
  maxParallelism: number;
  failurePolicy: FailurePolicy;
  pipelineRunId?: string;
  opened: { drawn: boolean }[];
  settles: { key: string; outcome: StepOutcome; reason: StepReason; error: string | null; seq: number }[];
  closed: { status: string; error: string | null; seq: number }[];
  fetched: { key: string; from: number; count: number; seq: number }[];
  prepared: { key: string; seq: number }[];
  /** Repeated records that disagree with the first: a settle or close the workflow changed its mind about. */
  conflicts: string[];
}

/** A child's start and end, in the order the test process saw them (one sequence over everything). */
interface ChildEvents {
  start?: number;
  end?: number;
  outcome?: string;
}

let seq = 0;
const plans = new Map<string, FakePlan>();
const byRun = new Map<string, FakePlan>();
const children = new Map<string, ChildEvents>();
/** Children the test cancels as soon as they start, as a user cancelling an item's run would. */
const cancelOnStart = new Set<string>();

const isFanOut = (s: FakeStep) => s.wouldBe.kind === 'items' && s.wouldBe.items.length !== 1;

function planOf(pipelineRunId: string): FakePlan {
  const plan = byRun.get(pipelineRunId);
  if (!plan) throw new Error(`no plan for pipeline run ${pipelineRunId}`);
  return plan;
}
function stepOf(plan: FakePlan, key: string): FakeStep {
  const step = plan.steps.find((s) => s.key === key);
  if (!step) throw new Error(`no step ${key}`);
  return step;
}

/**
 * Whether a record call repeats an earlier one (`was`). Local activities run at least once: a workflow
 * task that times out on a loaded machine runs its local activities again, so the recorder's writes are
 * idempotent and so are these. A repeat that disagrees is noted as a conflict, for the checks to fail on.
 */
function repeated(plan: FakePlan, was: { seq: number } | undefined, now: object): boolean {
  if (!was) return false;
  const first = { ...was, seq: undefined };
  if (JSON.stringify(first) !== JSON.stringify(now)) plan.conflicts.push(`${JSON.stringify(now)} after ${JSON.stringify(first)}`);
  return true;
}

/** What the fake stepItems refuses a batch with. */
const INVALID_ITEMS = 'task t-1 is an http task now: the step was prepared for a shell task';

/** In-memory PipelineActivities over the registered plans. */
const activities: PipelineActivities = {
  async openPipelineRun(a): Promise<PipelineRunOpened> {
    const plan = plans.get(a.pipelineId);
    if (!plan) throw new Error(`no plan for pipeline ${a.pipelineId}`);
    plan.opened.push({ drawn: a.drawn });
    plan.pipelineRunId = a.pipelineRunId;
    byRun.set(a.pipelineRunId, plan);
    return {
      kind: 'open',
      plan: {
        pipelineRunId: a.pipelineRunId,
        pipelineVersion: 1,
        steps: plan.steps.map((s) => ({ key: s.key, dependsOn: s.dependsOn, triggerRule: s.triggerRule })),
        maxParallelism: plan.maxParallelism,
        failurePolicy: plan.failurePolicy,
        reused: [],
      },
    };
  },
  async prepareStep(a) {
    const plan = planOf(a.pipelineRunId);
    plan.prepared.push({ key: a.stepKey, seq: ++seq });
    const step = stepOf(plan, a.stepKey);
    const missing = step.dependsOn.filter((d) => !(d in a.upstream));
    if (missing.length) throw new Error(`prepareStep ${a.stepKey} without upstream ${missing.join(', ')}`);
    const w = step.wouldBe;
    if (w.kind === 'condition_false') return { action: 'skip', reason: 'condition_false', detail: 'when was false' };
    if (w.kind === 'empty_list') return { action: 'skip', reason: 'empty_list', detail: 'forEach was empty' };
    if (w.kind === 'prepare_failed') return { action: 'fail', error: `steps.x.outputs.y: step x has no output "y"` };
    return { action: 'run', itemCount: w.items.length, fanOut: isFanOut(step) };
  },
  async stepItems(a) {
    const plan = planOf(a.pipelineRunId);
    const step = stepOf(plan, a.stepKey);
    if (step.wouldBe.kind !== 'items') throw new Error(`stepItems of ${a.stepKey}, which does not run`);
    const { items } = step.wouldBe;
    if (a.count < 1 || a.count > 50 || a.from + a.count > items.length) throw new Error(`stepItems ${a.stepKey} [${a.from}, +${a.count})`);
    if (step.invalidFrom !== undefined && a.from + a.count > step.invalidFrom)
      throw ApplicationFailure.nonRetryable(INVALID_ITEMS, 'PipelineStepInvalid');
    if (!plan.fetched.some((f) => f.key === a.stepKey && f.from === a.from && f.count === a.count)) {
      plan.fetched.push({ key: a.stepKey, from: a.from, count: a.count, seq: ++seq });
    }
    return Array.from({ length: a.count }, (_, i): StepItemStart => {
      const itemIndex = isFanOut(step) ? a.from + i : null;
      const outcome = items[a.from + i];
      const workflowId = stepRunWorkflowId(a.pipelineRunId, a.stepKey, itemIndex);
      // A cancelled item: its run sleeps until the test cancels it, so it ends cancelled as the parent sees it.
      if (outcome === 'cancelled') cancelOnStart.add(workflowId);
      const env =
        outcome === 'cancelled'
          ? { OUTCOME: 'succeeded', SLEEP_MS: '60000' }
          : { OUTCOME: step.answer ?? outcome, SLEEP_MS: String(step.sleepMs) };
      return {
        itemIndex,
        workflowId,
        taskName: `task-${a.stepKey}`,
        input: {
          runId: randomUUID(),
          tenantId: randomUUID(),
          taskId: randomUUID(),
          taskVersion: 1,
          trigger: 'pipeline',
          executor: 'shell',
          shell: { script: 'true', env },
          timeoutSeconds: 60,
          retry: {
            maximumAttempts: 1,
            initialIntervalSeconds: 1,
            backoffCoefficient: 2,
            maximumIntervalSeconds: 1,
            nonRetryableExitCodes: [],
          },
          shellTaskQueue: `${TASK_QUEUE}.shell`,
          pipeline: { pipelineRunId: a.pipelineRunId, stepKey: a.stepKey, itemIndex },
        },
      };
    });
  },
  async settleStep(a) {
    const plan = planOf(a.pipelineRunId);
    const record = { key: a.stepKey, outcome: a.outcome, reason: a.reason, error: a.error };
    if (
      !repeated(
        plan,
        plan.settles.find((s) => s.key === a.stepKey),
        record,
      )
    )
      plan.settles.push({ ...record, seq: ++seq });
  },
  async closePipelineRun(a) {
    const plan = planOf(a.pipelineRunId);
    const record = { status: a.status, error: a.error };
    if (!repeated(plan, plan.closed[0], record)) plan.closed.push({ ...record, seq: ++seq });
    return { alert: null };
  },
};

const sinks: InjectedSinks<StubSinks> = {
  stub: {
    event: {
      fn(info, e) {
        const c = children.get(info.workflowId) ?? {};
        if (e.event === 'start') {
          c.start = ++seq;
          if (cancelOnStart.delete(info.workflowId)) {
            // A fail_fast or pipeline cancel may end it first: then there is nothing left to cancel.
            client.workflow
              .getHandle(info.workflowId, info.runId)
              .cancel()
              .catch(() => undefined);
          }
        } else {
          c.end = ++seq;
          c.outcome = e.outcome;
        }
        children.set(info.workflowId, c);
      },
      callDuringReplay: false,
    },
  },
};

let client: Client;
let connection: Connection;
let worker: Worker;
let workerRun: Promise<void>;

beforeAll(async () => {
  try {
    // ERROR: every failed pipeline and child would log a warning.
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // already installed by an earlier suite in this Jest worker
  }
  const root = join(__dirname, '..', '..');
  const { code } = await bundleWorkflowCode({
    workflowsPath: join(root, 'test/support/pipeline-stub-workflows.ts'),
    webpackConfigHook: (config) => {
      config.resolve = {
        ...config.resolve,
        alias: { ...(config.resolve?.alias as object), '@task-scheduler/contracts': join(root, 'libs/contracts/src') },
      };
      return config;
    },
    logger: { info() {}, warn() {}, error: (m: string) => process.stderr.write(`${m}\n`), debug() {}, trace() {}, log() {} },
  });
  const address = process.env.TEST_TEMPORAL_ADDRESS as string;
  worker = await Worker.create({
    connection: await NativeConnection.connect({ address }),
    taskQueue: TASK_QUEUE,
    workflowBundle: { code },
    activities,
    sinks,
  });
  workerRun = worker.run();
  connection = await Connection.connect({ address });
  client = new Client({ connection });
}, 120_000);

afterAll(async () => {
  if (worker?.getState() === 'RUNNING') worker.shutdown();
  await workerRun;
  await connection?.close();
});

/** Starts a pipeline run of `steps` (its id drawn by the workflow, as for a schedule's fire, when `drawn`). */
async function startPipeline(
  steps: FakeStep[],
  opts: { maxParallelism: number; failurePolicy: FailurePolicy; continueAsNewAfterEvents?: number; drawn?: boolean },
): Promise<{ plan: FakePlan; handle: WorkflowHandleWithFirstExecutionRunId }> {
  const plan: FakePlan = {
    pipelineId: randomUUID(),
    steps,
    maxParallelism: opts.maxParallelism,
    failurePolicy: opts.failurePolicy,
    opened: [],
    settles: [],
    closed: [],
    fetched: [],
    prepared: [],
    conflicts: [],
  };
  plans.set(plan.pipelineId, plan);
  const pipelineRunId = opts.drawn ? undefined : randomUUID();
  const input: PipelineRunInput = {
    pipelineRunId,
    tenantId: randomUUID(),
    pipelineId: plan.pipelineId,
    trigger: opts.drawn ? 'schedule' : 'manual',
    continueAsNewAfterEvents: opts.continueAsNewAfterEvents,
  };
  const handle = await client.workflow.start('pipelineRunWorkflow', {
    taskQueue: TASK_QUEUE,
    workflowId: pipelineRunId ? pipelineRunWorkflowId(pipelineRunId) : `pipeline-schedule-${plan.pipelineId}`,
    args: [input],
  });
  return { plan, handle };
}

/** The workflow's end within the deadline: `succeeded`, `failed` (PipelineFailed) or `cancelled`. */
async function outcomeOf(handle: WorkflowHandle): Promise<'succeeded' | 'failed' | 'cancelled'> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`pipeline ${handle.workflowId} did not end within ${RESULT_DEADLINE_MS} ms`)),
      RESULT_DEADLINE_MS,
    );
  });
  try {
    const result = await Promise.race([handle.result(), deadline]);
    expect(result).toMatchObject({ status: 'succeeded' });
    return 'succeeded';
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    if (err.cause instanceof CancelledFailure) return 'cancelled';
    expect(err.cause).toBeInstanceOf(ApplicationFailure);
    expect((err.cause as ApplicationFailure).type).toBe('PipelineFailed');
    return 'failed';
  } finally {
    clearTimeout(timer);
  }
}

function childIdsOf(plan: FakePlan, step: FakeStep): string[] {
  if (step.wouldBe.kind !== 'items') return [];
  const id = plan.pipelineRunId as string;
  return isFanOut(step) ? step.wouldBe.items.map((_, i) => stepRunWorkflowId(id, step.key, i)) : [stepRunWorkflowId(id, step.key, null)];
}

/** Most children between their start and end at one time (their recorded events are inside their lifetimes). */
function peakChildren(plan: FakePlan): number {
  const marks = plan.steps
    .flatMap((s) => childIdsOf(plan, s))
    .map((id) => children.get(id))
    .filter((c): c is ChildEvents => c?.start !== undefined)
    .flatMap((c) => [
      [c.start as number, 1],
      [c.end ?? Infinity, -1],
    ])
    .sort((a, b) => a[0] - b[0]);
  let now = 0;
  let peak = 0;
  for (const [, d] of marks) peak = Math.max(peak, (now += d));
  return peak;
}

/** Invariants of every run: each step settled once, after its upstream; no child before its upstream's ended. */
function checkOrdering(plan: FakePlan): void {
  expect(plan.conflicts).toEqual([]);
  const settledAt = new Map<string, number>();
  for (const s of plan.settles) {
    expect(settledAt.has(s.key)).toBe(false);
    settledAt.set(s.key, s.seq);
  }
  expect([...settledAt.keys()].sort()).toEqual(plan.steps.map((s) => s.key).sort());
  for (const step of plan.steps) {
    for (const d of step.dependsOn) expect(settledAt.get(d) as number).toBeLessThan(settledAt.get(step.key) as number);
    const upstreamEnds = step.dependsOn.flatMap((d) => childIdsOf(plan, stepOf(plan, d))).map((id) => children.get(id)?.end);
    for (const id of childIdsOf(plan, step)) {
      const start = children.get(id)?.start;
      if (start === undefined) continue;
      for (const end of upstreamEnds) {
        if (end !== undefined) expect(end).toBeLessThan(start);
      }
      expect(start).toBeLessThan(settledAt.get(step.key) as number);
    }
  }
  expect(plan.closed).toHaveLength(1);
  expect(Math.max(...settledAt.values())).toBeLessThan(plan.closed[0].seq);
}

const statesOf = (plan: FakePlan) => Object.fromEntries(plan.settles.map((s) => [s.key, { outcome: s.outcome, reason: s.reason }]));

// ---------------------------------------------------------------- generated DAGs

const wouldBeArb: fc.Arbitrary<WouldBe> = fc.oneof(
  { weight: 10, arbitrary: fc.constant<WouldBe>({ kind: 'items', items: ['succeeded'] }) },
  { weight: 4, arbitrary: fc.constant<WouldBe>({ kind: 'items', items: ['failed'] }) },
  { weight: 1, arbitrary: fc.constant<WouldBe>({ kind: 'items', items: ['cancelled'] }) },
  {
    weight: 2,
    arbitrary: fc
      .array(fc.constantFrom<'succeeded' | 'failed' | 'cancelled'>('succeeded', 'succeeded', 'failed', 'cancelled'), {
        minLength: 2,
        maxLength: 4,
      })
      .map((items): WouldBe => ({ kind: 'items', items })),
  },
  { weight: 1, arbitrary: fc.constant<WouldBe>({ kind: 'condition_false' }) },
  { weight: 1, arbitrary: fc.constant<WouldBe>({ kind: 'empty_list' }) },
  { weight: 1, arbitrary: fc.constant<WouldBe>({ kind: 'prepare_failed' }) },
);

/** A DAG in definition order: each step depends on up to 3 earlier ones. */
const dagArb: fc.Arbitrary<FakeStep[]> = fc.integer({ min: 1, max: 30 }).chain((n) =>
  fc.tuple(
    ...Array.from({ length: n }, (_, i) =>
      fc.record<FakeStep>({
        key: fc.constant(`s${i}`),
        dependsOn:
          i === 0
            ? fc.constant<string[]>([])
            : fc.uniqueArray(fc.integer({ min: 0, max: i - 1 }), { maxLength: 3 }).map((ds) => ds.map((d) => `s${d}`)),
        triggerRule: fc.constantFrom(...TRIGGER_RULES),
        wouldBe: wouldBeArb,
        // Most children end at once (a timer costs a workflow task); some take a while, to vary the interleavings.
        sleepMs: fc.constantFrom(0, 0, 0, 30),
      }),
    ),
  ),
);

const fails = (w: WouldBe) => w.kind === 'prepare_failed' || (w.kind === 'items' && w.items.includes('failed'));

const caseArb = fc.record({
  steps: dagArb,
  policy: fc.constantFrom<FailurePolicy>('fail_fast', 'continue'),
  maxParallelism: fc.integer({ min: 1, max: 5 }),
});

/** Checks one generated pipeline run against the reference evaluator and the invariants. */
async function checkGenerated({ steps, policy, maxParallelism: p }: { steps: FakeStep[]; policy: FailurePolicy; maxParallelism: number }) {
  // Under fail_fast the outcome of a race between a failure and a running step depends on timing; with one
  // step at a time there is none (and with no failure there is nothing to race). See pipeline-reference.ts.
  const maxParallelism = policy === 'fail_fast' && steps.some((s) => fails(s.wouldBe)) ? 1 : p;
  const expected = referencePipeline(steps, Object.fromEntries(steps.map((s) => [s.key, s.wouldBe])), policy);
  const { plan, handle } = await startPipeline(steps, { maxParallelism, failurePolicy: policy });
  const status = await outcomeOf(handle);

  expect(statesOf(plan)).toEqual(expected.steps);
  expect(status).toBe(expected.status);
  expect(plan.closed.map((c) => c.status)).toEqual([expected.status]);
  checkOrdering(plan);
  expect(peakChildren(plan)).toBeLessThanOrEqual(maxParallelism);
}

/** Pipelines per property run, run at once (independent runs; the dev server's latency, not its CPU, is the cost). */
const AT_ONCE = 8;
const PROPERTY_RUNS = 5;

test(`generated DAGs (${AT_ONCE * PROPERTY_RUNS}): each ends, every step as the reference evaluator says, in dependency order, within maxParallelism`, async () => {
  let runs = 0;
  const t0 = Date.now();
  await fc.assert(
    fc.asyncProperty(fc.array(caseArb, { minLength: AT_ONCE, maxLength: AT_ONCE }), async (cases) => {
      runs += cases.length;
      await Promise.all(cases.map(checkGenerated));
    }),
    { numRuns: PROPERTY_RUNS, interruptAfterTimeLimit: 150_000, markInterruptAsFailure: true },
  );
  console.log(`generated DAGs: ${runs} pipeline runs in ${Date.now() - t0} ms`);
}, 180_000);

/**
 * fail_fast with steps side by side, where a failure races the running steps and which of them were
 * already started depends on timing: no exact states, but what must hold for every interleaving. The
 * order is the workflow's own, from its record calls (each awaited in turn, so they are in program
 * order); the first failed settle comes after the workflow knew of the failure.
 */
async function checkFailFastConcurrent({
  steps,
  maxParallelism,
}: {
  steps: FakeStep[];
  maxParallelism: number;
}): Promise<'raced' | 'not raced'> {
  const { plan, handle } = await startPipeline(steps, { maxParallelism, failurePolicy: 'fail_fast' });
  const status = await outcomeOf(handle);
  checkOrdering(plan);
  expect(peakChildren(plan)).toBeLessThanOrEqual(maxParallelism);
  const states = statesOf(plan);
  const expected = pipelineOutcome(plan.steps, states, false);
  expect([status, plan.closed[0].status, plan.closed[0].error]).toEqual([expected.status, expected.status, expected.error]);

  const firstFailure = Math.min(...plan.settles.filter((s) => s.outcome === 'failed').map((s) => s.seq));
  // No step failed (each that would was skipped by its rule): nothing raced, so the exact states hold.
  if (firstFailure === Infinity) {
    expect(states).toEqual(referencePipeline(steps, Object.fromEntries(steps.map((s) => [s.key, s.wouldBe])), 'fail_fast').steps);
    return 'not raced';
  }
  const aware = (key: string) => FAILURE_AWARE_RULES.includes(stepOf(plan, key).triggerRule);
  // The first preparation of each step (a repeated one is its local activity run again).
  const preparedAt = new Map([...plan.prepared].reverse().map((p) => [p.key, p.seq]));
  // After the failure only failure-aware steps start, or fetch items to start.
  for (const p of [...preparedAt].map(([key, at]) => ({ key, seq: at })).concat(plan.fetched)) {
    if (p.seq > firstFailure) expect({ key: p.key, aware: aware(p.key) }).toEqual({ key: p.key, aware: true });
  }
  for (const [key, st] of Object.entries(states)) {
    if (st.reason !== 'fail_fast') continue;
    // Cancelled by fail_fast: it was started before the failure. Skipped by it: it never was.
    if (st.outcome === 'cancelled')
      expect({ key, before: (preparedAt.get(key) ?? Infinity) < firstFailure }).toEqual({ key, before: true });
    else expect({ key, outcome: st.outcome, prepared: preparedAt.has(key) }).toEqual({ key, outcome: 'skipped', prepared: false });
  }
  return Object.values(states).some((st) => st.outcome === 'cancelled' && st.reason === 'fail_fast') ? 'raced' : 'not raced';
}

const CONCURRENT_RUNS = 3;

test(`generated fail_fast DAGs run side by side (${AT_ONCE * CONCURRENT_RUNS}): every step final, none started after the failure unless failure-aware, the status as pipelineOutcome says`, async () => {
  const failing = fc.record({
    steps: dagArb.filter((steps) => steps.some((s) => fails(s.wouldBe))),
    maxParallelism: fc.integer({ min: 2, max: 5 }),
  });
  const seen: string[] = [];
  await fc.assert(
    fc.asyncProperty(fc.array(failing, { minLength: AT_ONCE, maxLength: AT_ONCE }), async (cases) => {
      seen.push(...(await Promise.all(cases.map(checkFailFastConcurrent))));
    }),
    { numRuns: CONCURRENT_RUNS, interruptAfterTimeLimit: 45_000, markInterruptAsFailure: true },
  );
  // How many runs had a failure cancel a running step: the interleavings this property is for.
  console.log(`concurrent fail_fast: ${seen.filter((r) => r === 'raced').length} of ${seen.length} runs cancelled a running step`);
}, 60_000);

// ---------------------------------------------------------------- targeted cases

const step = (key: string, dependsOn: string[], extra: Partial<FakeStep> = {}): FakeStep => ({
  key,
  dependsOn,
  triggerRule: 'all_success',
  wouldBe: { kind: 'items', items: ['succeeded'] },
  sleepMs: 0,
  ...extra,
});

test('a 40-step chain continues as new at barriers: every run stays short, the drawn id is kept, the run ends right', async () => {
  const steps = Array.from({ length: 40 }, (_, i) => step(`c${i}`, i === 0 ? [] : [`c${i - 1}`]));
  const limit = 200;
  const { plan, handle } = await startPipeline(steps, {
    maxParallelism: 3,
    failurePolicy: 'fail_fast',
    continueAsNewAfterEvents: limit,
    drawn: true,
  });
  expect(await outcomeOf(handle)).toBe('succeeded');
  expect(plan.opened).toEqual([{ drawn: true }]);
  expect(plan.settles.map((s) => [s.key, s.outcome, s.reason])).toEqual(steps.map((s) => [s.key, 'succeeded', 'ran']));
  checkOrdering(plan);

  const lengths: number[] = [];
  let runId: string | undefined = handle.firstExecutionRunId;
  for (let i = 0; runId && i < 100; i++) {
    const history: Awaited<ReturnType<WorkflowHandle['fetchHistory']>> = await client.workflow
      .getHandle(handle.workflowId, runId)
      .fetchHistory();
    const events = history.events ?? [];
    lengths.push(events.length);
    runId = events[events.length - 1]?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
  }
  expect(lengths.length).toBeGreaterThanOrEqual(3);
  // Past the limit the run only waits for its one running child and settles it: a few dozen events more at most.
  for (const n of lengths) expect(n).toBeLessThan(limit + 60);
  const described = await client.workflow.getHandle(handle.workflowId).describe();
  expect(described.searchAttributes[SEARCH_ATTRIBUTES.pipelineRunId]).toEqual([plan.pipelineRunId]);
}, 60_000);

test('a barrier in the middle of a fan-out: the next run starts the remaining items only, the outcome counts them all', async () => {
  const items = Array.from({ length: 24 }, (_, i) => (i === 7 ? 'failed' : 'succeeded') as 'succeeded' | 'failed');
  const steps = [step('fan', [], { wouldBe: { kind: 'items', items } }), step('after', ['fan'], { triggerRule: 'all_done' })];
  const { plan, handle } = await startPipeline(steps, { maxParallelism: 3, failurePolicy: 'continue', continueAsNewAfterEvents: 100 });
  expect(await outcomeOf(handle)).toBe('failed');
  expect(plan.settles.map((s) => [s.key, s.outcome, s.reason, s.error])).toEqual([
    ['fan', 'failed', 'ran', expect.stringMatching(/^1 of 24 items failed/)],
    ['after', 'succeeded', 'ran', null],
  ]);
  // Every item started once: fetched ranges tile [0, 24) without overlap across the runs.
  const fetched = plan.fetched.filter((f) => f.key === 'fan').sort((x, y) => x.from - y.from);
  expect(fetched.reduce((next, f) => (f.from === next ? next + f.count : -1), 0)).toBe(24);
  const ids = childIdsOf(plan, stepOf(plan, 'fan'));
  expect(ids.map((id) => children.get(id)?.outcome)).toEqual(items);
  // The next run prepared the step again, to carry on with it.
  expect(plan.prepared.filter((p) => p.key === 'fan').length).toBeGreaterThan(1);
  checkOrdering(plan);
}, 60_000);

test('cancelling the pipeline run cancels its running children, waits for them, and settles the rest cancelled', async () => {
  const steps = [
    step('a', []),
    step('b', ['a'], { sleepMs: 60_000 }),
    step('c', ['a'], { sleepMs: 60_000, wouldBe: { kind: 'items', items: ['succeeded', 'succeeded', 'succeeded'] } }),
    step('d', ['b', 'c']),
    step('e', ['d'], { triggerRule: 'always' }),
  ];
  const { plan, handle } = await startPipeline(steps, { maxParallelism: 10, failurePolicy: 'continue' });
  const running = () => ['b', 'c'].flatMap((k) => childIdsOf(plan, stepOf(plan, k)));
  await eventually(
    () => running().filter((id) => children.get(id)?.start === undefined),
    (notStarted) => notStarted.length === 0,
    15_000,
    50,
  );
  await handle.cancel();
  expect(await outcomeOf(handle)).toBe('cancelled');
  expect(statesOf(plan)).toEqual({
    a: { outcome: 'succeeded', reason: 'ran' },
    b: { outcome: 'cancelled', reason: 'pipeline_cancelled' },
    c: { outcome: 'cancelled', reason: 'pipeline_cancelled' },
    d: { outcome: 'cancelled', reason: 'pipeline_cancelled' },
    e: { outcome: 'cancelled', reason: 'pipeline_cancelled' },
  });
  expect(plan.closed.map((c) => c.status)).toEqual(['cancelled']);
  for (const id of running()) {
    expect(children.get(id)?.outcome).toBe('cancelled');
    expect(children.get(id)?.end as number).toBeLessThan(plan.closed[0].seq);
  }
  checkOrdering(plan);
  await checkReplayAndRecord(process.env.TEST_TEMPORAL_ADDRESS as string, handle.workflowId, 'pipeline-run-cancelled.json');
}, 60_000);

test('fail_fast: the first failure cancels running children, starts no more items, and skips what is not failure-aware', async () => {
  const steps = [
    step('a', []),
    step('b', ['a'], { sleepMs: 300, wouldBe: { kind: 'items', items: ['failed'] } }),
    step('c', ['a'], { sleepMs: 60_000 }),
    step('fan', ['a'], { sleepMs: 60_000, wouldBe: { kind: 'items', items: Array<'succeeded'>(8).fill('succeeded') } }),
    step('d', ['c']),
    step('on_failure', ['b'], { triggerRule: 'one_failed' }),
  ];
  const { plan, handle } = await startPipeline(steps, { maxParallelism: 4, failurePolicy: 'fail_fast' });
  expect(await outcomeOf(handle)).toBe('failed');
  expect(statesOf(plan)).toEqual({
    a: { outcome: 'succeeded', reason: 'ran' },
    b: { outcome: 'failed', reason: 'ran' },
    c: { outcome: 'cancelled', reason: 'fail_fast' },
    fan: { outcome: 'cancelled', reason: 'fail_fast' },
    d: { outcome: 'skipped', reason: 'fail_fast' },
    on_failure: { outcome: 'succeeded', reason: 'ran' },
  });
  // b, c and two items of fan filled the four places; the other six items never started.
  const fanChildren = childIdsOf(plan, stepOf(plan, 'fan')).map((id) => children.get(id));
  expect(fanChildren.filter((c) => c?.start !== undefined)).toHaveLength(2);
  expect(fanChildren.filter((c) => c?.outcome === 'cancelled')).toHaveLength(2);
  expect(children.get(stepRunWorkflowId(plan.pipelineRunId as string, 'c', null))?.outcome).toBe('cancelled');
  expect(plan.settles.find((s) => s.key === 'b')?.error).toBe('run failed: exit code 1');
  expect(plan.closed[0].error).toBe('steps c, fan cancelled');
  checkOrdering(plan);
  // Cancelled children and a failure, replayed by the production bundle.
  await checkReplayAndRecord(process.env.TEST_TEMPORAL_ADDRESS as string, handle.workflowId, 'pipeline-run-fail-fast.json');
}, 60_000);

test('a fan-out of 50 items under maxParallelism 5 never has more than 5 running, and runs them all', async () => {
  const items = Array<'succeeded'>(50).fill('succeeded');
  const steps = [step('fan', [], { sleepMs: 100, wouldBe: { kind: 'items', items } }), step('after', ['fan'])];
  const { plan, handle } = await startPipeline(steps, { maxParallelism: 5, failurePolicy: 'fail_fast' });
  expect(await outcomeOf(handle)).toBe('succeeded');
  const ids = childIdsOf(plan, stepOf(plan, 'fan'));
  expect(ids.filter((id) => children.get(id)?.outcome === 'succeeded')).toHaveLength(50);
  const peak = peakChildren(plan);
  console.log(`fan-out of 50 under maxParallelism 5: peak ${peak} children at once`);
  expect(peak).toBeLessThanOrEqual(5);
  expect(peak).toBeGreaterThanOrEqual(2);
  expect(plan.fetched.every((f) => f.count <= 5)).toBe(true);
  expect(statesOf(plan)).toEqual({ fan: { outcome: 'succeeded', reason: 'ran' }, after: { outcome: 'succeeded', reason: 'ran' } });
  checkOrdering(plan);
}, 60_000);

test('a step whose items can no longer start (PipelineStepInvalid) fails prepare_failed; the others go on by their rules', async () => {
  const steps = [
    step('fan', [], { sleepMs: 200, invalidFrom: 2, wouldBe: { kind: 'items', items: Array<'succeeded'>(6).fill('succeeded') } }),
    step('single', [], { invalidFrom: 0 }),
    step('after', ['fan', 'single'], { triggerRule: 'all_done' }),
    step('next', ['single']),
  ];
  const { plan, handle } = await startPipeline(steps, { maxParallelism: 2, failurePolicy: 'continue' });
  expect(await outcomeOf(handle)).toBe('failed');
  expect(Object.fromEntries(plan.settles.map((s) => [s.key, [s.outcome, s.reason, s.error]]))).toEqual({
    fan: ['failed', 'prepare_failed', `items 2 and after could not start: ${INVALID_ITEMS}`],
    single: ['failed', 'prepare_failed', INVALID_ITEMS],
    after: ['succeeded', 'ran', null],
    next: ['skipped', 'trigger_rule', null],
  });
  // The two items started before the refusal ran to their end; none after it started.
  expect(childIdsOf(plan, stepOf(plan, 'fan')).map((id) => children.get(id)?.outcome ?? 'not started')).toEqual([
    'succeeded',
    'succeeded',
    ...Array<string>(4).fill('not started'),
  ]);
  expect(plan.closed.map((c) => [c.status, c.error])).toEqual([['failed', 'steps fan, single failed']]);
  checkOrdering(plan);
}, 60_000);

test('a refused batch with nothing left running settles its step and the run goes on (not a stall)', async () => {
  // maxParallelism 1: item 0 ends, the next batch is refused, and no child is running at that moment.
  const steps = [
    step('fan', [], { invalidFrom: 1, wouldBe: { kind: 'items', items: Array<'succeeded'>(3).fill('succeeded') } }),
    step('after', ['fan'], { triggerRule: 'all_done' }),
  ];
  const { plan, handle } = await startPipeline(steps, { maxParallelism: 1, failurePolicy: 'continue' });
  expect(await outcomeOf(handle)).toBe('failed');
  expect(Object.fromEntries(plan.settles.map((s) => [s.key, [s.outcome, s.reason, s.error]]))).toEqual({
    fan: ['failed', 'prepare_failed', `items 1 and after could not start: ${INVALID_ITEMS}`],
    after: ['succeeded', 'ran', null],
  });
  expect(plan.closed.map((c) => [c.status, c.error])).toEqual([['failed', 'step fan failed']]);
  checkOrdering(plan);
}, 60_000);

test('an item whose run answers duplicate (its task disabled) is a failed item, and fail_fast stops the rest', async () => {
  const steps = [
    step('refused', [], { sleepMs: 300, answer: 'disabled' }),
    step('long', [], { sleepMs: 60_000 }),
    step('after', ['refused']),
    step('on_failure', ['refused'], { triggerRule: 'one_failed' }),
  ];
  const { plan, handle } = await startPipeline(steps, { maxParallelism: 4, failurePolicy: 'fail_fast' });
  expect(await outcomeOf(handle)).toBe('failed');
  expect(statesOf(plan)).toEqual({
    refused: { outcome: 'failed', reason: 'ran' },
    long: { outcome: 'cancelled', reason: 'fail_fast' },
    after: { outcome: 'skipped', reason: 'fail_fast' },
    on_failure: { outcome: 'succeeded', reason: 'ran' },
  });
  expect(plan.settles.find((s) => s.key === 'refused')?.error).toMatch(/disabled or deleted/);
  expect(children.get(stepRunWorkflowId(plan.pipelineRunId as string, 'long', null))?.outcome).toBe('cancelled');
  expect(plan.closed.map((c) => [c.status, c.error])).toEqual([['failed', 'step long cancelled']]);
  checkOrdering(plan);
}, 60_000);

test('a child answer no item can have stops the run: running children cancelled, every step final, the run closed failed', async () => {
  const steps = [
    step('long', [], { sleepMs: 60_000 }),
    step('odd', [], { sleepMs: 300, answer: 'unexpected' }),
    step('later', ['odd'], { triggerRule: 'always' }),
  ];
  const { plan, handle } = await startPipeline(steps, { maxParallelism: 4, failurePolicy: 'continue' });
  expect(await outcomeOf(handle)).toBe('failed');
  const settled = Object.fromEntries(plan.settles.map((s) => [s.key, [s.outcome, s.reason, s.error]]));
  const halt = expect.stringMatching(/^the pipeline run stopped on an error: run .* returned status failed$/);
  expect(settled).toEqual({
    long: ['cancelled', 'pipeline_cancelled', halt],
    odd: ['failed', 'ran', expect.stringMatching(/returned status failed$/)],
    later: ['cancelled', 'pipeline_cancelled', halt],
  });
  expect(children.get(stepRunWorkflowId(plan.pipelineRunId as string, 'long', null))?.outcome).toBe('cancelled');
  expect(plan.closed.map((c) => [c.status, c.error])).toEqual([['failed', halt]]);
  checkOrdering(plan);
}, 60_000);
