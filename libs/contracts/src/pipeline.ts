/**
 * Pipelines: the shared vocabulary and the pure rules of a pipeline run.
 * Everything here is deterministic and imports nothing, so the pipeline
 * workflow, the API's validation and the tests use one implementation of
 * each rule (docs/pipelines.md states them; test/unit/pipeline-rules.spec.ts
 * checks the docs' table against {@link ruleHolds}).
 */
import type { RunOverrides } from './task';
import type { TaskRunInput } from './workflow-io';

/** Airflow-compatible trigger rules, evaluated once every upstream step is final. */
export const TRIGGER_RULES = [
  'all_success',
  'all_failed',
  'all_done',
  'one_success',
  'one_failed',
  'none_failed',
  'none_failed_min_one_success',
  'always',
] as const;
export type TriggerRule = (typeof TRIGGER_RULES)[number];
export const DEFAULT_TRIGGER_RULE: TriggerRule = 'all_success';

/**
 * Rules written for failures: a step with one of them still runs under
 * `fail_fast`, and a failure of its upstream that it ran for counts as handled.
 */
export const FAILURE_AWARE_RULES: readonly TriggerRule[] = ['one_failed', 'all_failed', 'always'];

/** The final states of a step (a timed-out run is a `failed` step). */
export const STEP_OUTCOMES = ['succeeded', 'failed', 'skipped', 'cancelled'] as const;
export type StepOutcome = (typeof STEP_OUTCOMES)[number];

export const STEP_STATUSES = ['pending', 'running', ...STEP_OUTCOMES] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];

/**
 * Why a step ended as it did.
 * - `ran`: its run(s) ended so.
 * - `reused`: a retry took the succeeded step (and its outputs) from the run it retries.
 * - `trigger_rule`: its trigger rule did not hold over its upstream outcomes.
 * - `condition_false`: its `when` expression was false.
 * - `empty_list`: its `forEach` list had no items.
 * - `fail_fast`: another step failed under `fail_fast` (not started: skipped; running: cancelled).
 * - `pipeline_cancelled`: the pipeline run was cancelled, or stopped on an error of its own (the step's error says so).
 * - `prepare_failed`: it could not be started: a template or expression failed, an output it needs is missing,
 *   its task is disabled or gone, or its `forEach` is not a list.
 */
export const STEP_REASONS = [
  'ran',
  'reused',
  'trigger_rule',
  'condition_false',
  'empty_list',
  'fail_fast',
  'pipeline_cancelled',
  'prepare_failed',
] as const;
export type StepReason = (typeof STEP_REASONS)[number];

export const FAILURE_POLICIES = ['fail_fast', 'continue'] as const;
export type FailurePolicy = (typeof FAILURE_POLICIES)[number];

export const PIPELINE_RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type PipelineRunStatus = (typeof PIPELINE_RUN_STATUSES)[number];
export const FINAL_PIPELINE_RUN_STATUSES: readonly PipelineRunStatus[] = ['succeeded', 'failed', 'cancelled'];

export const PIPELINE_RUN_TRIGGERS = ['manual', 'schedule', 'retry'] as const;
export type PipelineRunTrigger = (typeof PIPELINE_RUN_TRIGGERS)[number];

/** The limits a pipeline is held to (docs/pipelines.md explains each against Temporal's). */
export const PIPELINE_LIMITS = {
  maxSteps: 200,
  maxDependsOn: 50,
  /** Items of one `forEach`. */
  maxItemsPerStep: 1000,
  /** Child runs of one pipeline run, over all steps and items (a retry counts its own). */
  maxRunsPerPipelineRun: 10_000,
  defaultParallelism: 10,
  /** Children running at once; Temporal allows 2,000 pending children per workflow. */
  maxParallelism: 500,
  /** Bytes of one run's outputs (a step's file, or an HTTP step's JSON body). */
  maxOutputBytes: 64 * 1024,
  maxParameters: 50,
  /** Bytes of a run's parameters as JSON. */
  maxParameterBytes: 16 * 1024,
  maxExpressionLength: 2000,
  /** Item inputs fetched per local activity call (each result is one payload: Temporal refuses payloads over 2 MB). */
  itemsPerBatch: 50,
  /** Bytes of one item's task-run input as JSON: it is in the history twice (fetched, then the child's start). */
  maxItemInputBytes: 32 * 1024,
  /** The pipeline workflow continues as new at a barrier past either of these (Temporal: 51,200 events / 50 MB). */
  continueAsNewAfterEvents: 10_000,
  continueAsNewAfterBytes: 10 * 1024 * 1024,
} as const;

/** Step keys name steps in expressions (`steps.<key>`): identifiers, not reserved by CEL. */
export const STEP_KEY_PATTERN = /^[a-z][a-z0-9_]{0,62}$/;
export const PARAMETER_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export interface PipelineParameter {
  name: string;
  description?: string;
  /** Required when it has no default. */
  required?: boolean;
  default?: unknown;
}

/** One step as stored (the API resolves `task` to the task's id). */
export interface PipelineStep {
  key: string;
  taskId: string;
  /** Trigger parameters of the step's run; string values may hold `{{ expression }}` templates. */
  overrides?: RunOverrides;
  dependsOn: string[];
  triggerRule: TriggerRule;
  /** CEL over `steps` and `params`; false skips the step. */
  when?: string;
  /** A literal list, or a string `{{ expression }}` that evaluates to a list. */
  forEach?: unknown[] | string;
}

export interface PipelineDefinition {
  parameters: PipelineParameter[];
  steps: PipelineStep[];
  maxParallelism: number;
  failurePolicy: FailurePolicy;
}

/** The structure of a step the workflow schedules by (no overrides, expressions or tasks: those stay in PostgreSQL). */
export interface PlannedStep {
  key: string;
  dependsOn: string[];
  triggerRule: TriggerRule;
}

export function plannedSteps(def: Pick<PipelineDefinition, 'steps'>): PlannedStep[] {
  return def.steps.map((s) => ({ key: s.key, dependsOn: [...s.dependsOn], triggerRule: s.triggerRule }));
}

// ---------------------------------------------------------------- rules

/**
 * Whether `rule` lets a step run, given the final outcomes of all its upstream
 * steps (only which outcomes occur matters, not how often). A step without
 * upstream steps always may run. This is the table in docs/pipelines.md.
 */
export function ruleHolds(rule: TriggerRule, upstream: readonly StepOutcome[]): boolean {
  if (upstream.length === 0) return true;
  const has = (o: StepOutcome): boolean => upstream.includes(o);
  const only = (...allowed: StepOutcome[]): boolean => upstream.every((o) => allowed.includes(o));
  switch (rule) {
    case 'all_success':
      return only('succeeded');
    case 'all_failed':
      return only('failed');
    case 'all_done':
    case 'always':
      return true;
    case 'one_success':
      return has('succeeded');
    case 'one_failed':
      return has('failed');
    case 'none_failed':
      return only('succeeded', 'skipped');
    case 'none_failed_min_one_success':
      return only('succeeded', 'skipped') && has('succeeded');
  }
}

/**
 * The outcome of a step over its items (a step without `forEach` has one):
 * `succeeded` when every item succeeded, else `failed` when any item failed,
 * else `cancelled`. A step with no items is `skipped` (`empty_list`).
 */
export function combineItems(items: readonly StepOutcome[]): StepOutcome {
  if (items.length === 0) return 'skipped';
  if (items.every((o) => o === 'succeeded')) return 'succeeded';
  if (items.includes('failed')) return 'failed';
  return 'cancelled';
}

/**
 * What happens to a pending step whose upstream steps are all final: `run`
 * (then `when` and `forEach` decide, see the preparation), or settled without
 * running. Under `fail_fast` once a step failed, only failure-aware steps are
 * still evaluated; a cancelled pipeline starts nothing.
 */
export function decideStep(
  step: PlannedStep,
  upstream: readonly StepOutcome[],
  ctx: { failing: boolean; policy: FailurePolicy; cancelled: boolean },
): { action: 'run' } | { action: 'settle'; outcome: StepOutcome; reason: StepReason } {
  if (ctx.cancelled) return { action: 'settle', outcome: 'cancelled', reason: 'pipeline_cancelled' };
  if (ctx.failing && ctx.policy === 'fail_fast' && !FAILURE_AWARE_RULES.includes(step.triggerRule)) {
    return { action: 'settle', outcome: 'skipped', reason: 'fail_fast' };
  }
  if (!ruleHolds(step.triggerRule, upstream)) return { action: 'settle', outcome: 'skipped', reason: 'trigger_rule' };
  return { action: 'run' };
}

export interface SettledStep {
  outcome: StepOutcome;
  reason: StepReason;
}

/**
 * The pipeline run's final status, one rule: `cancelled` when the run was
 * cancelled; else `failed` when a step was cancelled or failed without being
 * handled; else `succeeded` (skipped steps do not fail a run). A failed step
 * is handled when a step that depends on it directly, with a failure-aware
 * rule, ran (its own failure, if any, counts for itself).
 */
export function pipelineOutcome(
  steps: readonly PlannedStep[],
  settled: Readonly<Record<string, SettledStep>>,
  cancelled: boolean,
): { status: Extract<PipelineRunStatus, 'succeeded' | 'failed' | 'cancelled'>; error: string | null } {
  if (cancelled) return { status: 'cancelled', error: 'the pipeline run was cancelled' };
  const ran = (k: string): boolean => settled[k]?.reason === 'ran';
  const unhandled = steps.filter(
    (s) =>
      settled[s.key]?.outcome === 'failed' &&
      !steps.some((d) => d.dependsOn.includes(s.key) && FAILURE_AWARE_RULES.includes(d.triggerRule) && ran(d.key)),
  );
  const cancelledSteps = steps.filter((s) => settled[s.key]?.outcome === 'cancelled');
  if (unhandled.length === 0 && cancelledSteps.length === 0) return { status: 'succeeded', error: null };
  const parts = [
    ...(unhandled.length ? [`step${unhandled.length > 1 ? 's' : ''} ${unhandled.map((s) => s.key).join(', ')} failed`] : []),
    ...(cancelledSteps.length
      ? [`step${cancelledSteps.length > 1 ? 's' : ''} ${cancelledSteps.map((s) => s.key).join(', ')} cancelled`]
      : []),
  ];
  return { status: 'failed', error: parts.join('; ') };
}

/**
 * The steps a retry takes over from the run it retries: the succeeded ones
 * none of whose upstream steps (transitively) is re-run. Everything else —
 * failed, cancelled and skipped steps and what depends on them — runs again.
 */
export function reusableSteps(steps: readonly PlannedStep[], previous: Readonly<Record<string, StepOutcome>>): Set<string> {
  const byKey = new Map(steps.map((s) => [s.key, s]));
  const memo = new Map<string, boolean>();
  const reusable = (key: string): boolean => {
    const known = memo.get(key);
    if (known !== undefined) return known;
    memo.set(key, false); // a cycle (never stored) reuses nothing
    const step = byKey.get(key);
    const ok = !!step && previous[key] === 'succeeded' && step.dependsOn.every(reusable);
    memo.set(key, ok);
    return ok;
  };
  return new Set(steps.map((s) => s.key).filter(reusable));
}

// ---------------------------------------------------------------- structure

export type DagProblem =
  | { code: 'too_many_steps'; message: string }
  | { code: 'duplicate_key'; key: string; message: string }
  | { code: 'invalid_key'; key: string; message: string }
  | { code: 'unknown_dependency'; key: string; dependency: string; message: string }
  | { code: 'duplicate_dependency'; key: string; dependency: string; message: string }
  | { code: 'too_many_dependencies'; key: string; message: string }
  | { code: 'cycle'; cycle: string[]; message: string };

/**
 * Structural problems of a pipeline's steps, each once, in step order: keys,
 * dependencies and cycles (named `a → b → c → a`). Empty when valid.
 */
export function validateDag(steps: readonly Pick<PlannedStep, 'key' | 'dependsOn'>[]): DagProblem[] {
  const problems: DagProblem[] = [];
  if (steps.length === 0) problems.push({ code: 'too_many_steps', message: 'a pipeline needs at least one step' });
  if (steps.length > PIPELINE_LIMITS.maxSteps) {
    problems.push({ code: 'too_many_steps', message: `a pipeline has at most ${PIPELINE_LIMITS.maxSteps} steps (this one has ${steps.length})` });
  }
  const keys = new Set<string>();
  for (const s of steps) {
    if (!STEP_KEY_PATTERN.test(s.key)) {
      problems.push({
        code: 'invalid_key',
        key: s.key,
        message: `step key ${JSON.stringify(s.key)} must start with a lowercase letter and hold only a-z, 0-9 and _ (at most 63)`,
      });
    }
    if (keys.has(s.key)) problems.push({ code: 'duplicate_key', key: s.key, message: `step key ${s.key} is used twice` });
    keys.add(s.key);
  }
  for (const s of steps) {
    if (s.dependsOn.length > PIPELINE_LIMITS.maxDependsOn) {
      problems.push({ code: 'too_many_dependencies', key: s.key, message: `step ${s.key} depends on more than ${PIPELINE_LIMITS.maxDependsOn} steps` });
    }
    const seen = new Set<string>();
    for (const d of s.dependsOn) {
      if (seen.has(d)) problems.push({ code: 'duplicate_dependency', key: s.key, dependency: d, message: `step ${s.key} lists ${d} twice in dependsOn` });
      seen.add(d);
      if (!keys.has(d)) {
        problems.push({ code: 'unknown_dependency', key: s.key, dependency: d, message: `step ${s.key} depends on ${JSON.stringify(d)}, which is not a step of this pipeline` });
      }
    }
  }
  const cycle = findCycle(steps);
  if (cycle) problems.push({ code: 'cycle', cycle, message: `the steps form a cycle: ${cycle.join(' → ')}` });
  return problems;
}

/**
 * A cycle among the steps, as the keys along it with the first repeated at
 * the end (`['a', 'b', 'a']`: a depends on b depends on a, written in the
 * direction work flows), or null. Unknown dependencies are ignored here.
 */
export function findCycle(steps: readonly Pick<PlannedStep, 'key' | 'dependsOn'>[]): string[] | null {
  const deps = new Map(steps.map((s) => [s.key, s.dependsOn]));
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (key: string): string[] | null => {
    state.set(key, 'open');
    path.push(key);
    for (const d of deps.get(key) ?? []) {
      if (!deps.has(d)) continue;
      if (state.get(d) === 'open') {
        // path holds downstream → upstream; work flows upstream → downstream
        const loop = path.slice(path.indexOf(d));
        return [...loop, d].reverse();
      }
      if (!state.has(d)) {
        const found = visit(d);
        if (found) return found;
      }
    }
    path.pop();
    state.set(key, 'done');
    return null;
  };
  for (const s of steps) {
    if (!state.has(s.key)) {
      const found = visit(s.key);
      if (found) return found;
    }
  }
  return null;
}

/** Every step `key` depends on, directly or through others. */
export function upstreamOf(steps: readonly Pick<PlannedStep, 'key' | 'dependsOn'>[], key: string): Set<string> {
  const deps = new Map(steps.map((s) => [s.key, s.dependsOn]));
  const out = new Set<string>();
  const stack = [...(deps.get(key) ?? [])];
  while (stack.length) {
    const k = stack.pop() as string;
    if (out.has(k)) continue;
    out.add(k);
    stack.push(...(deps.get(k) ?? []));
  }
  return out;
}

/** Workflow id of a pipeline run, and of its steps' and items' runs: `<pipeline run>.<step>[.<item>]`. */
export function pipelineRunWorkflowId(pipelineRunId: string): string {
  return `pipeline-run-${pipelineRunId}`;
}
export function stepRunWorkflowId(pipelineRunId: string, stepKey: string, itemIndex: number | null): string {
  return `${pipelineRunWorkflowId(pipelineRunId)}.${stepKey}${itemIndex === null ? '' : `.${itemIndex}`}`;
}

// ---------------------------------------------------------------- workflow I/O

/** Input of `pipelineRunWorkflow`. */
export interface PipelineRunInput {
  /** Chosen by the API (manual, retry); a schedule's fire has none and the workflow draws one. */
  pipelineRunId?: string;
  tenantId: string;
  pipelineId: string;
  scheduleId?: string;
  /**
   * A schedule's parameters as given. A manual or retry run's are recorded by the API and also passed
   * here (defaults applied), with its version and the run it retries, so that a run whose row was not
   * committed (the start reached Temporal, the commit failed) is recorded as asked, not with defaults.
   */
  params?: Record<string, unknown>;
  trigger: PipelineRunTrigger;
  pipelineVersion?: number;
  retryOfPipelineRunId?: string;
  /** Queue of the HTTP executors, which deliver the run's alert webhook (no alert is sent without it). */
  httpTaskQueue?: string;
  /** Tests lower these to exercise continue-as-new; default {@link PIPELINE_LIMITS}. */
  continueAsNewAfterEvents?: number;
  /** State carried over continue-as-new (absent on the first run). */
  carried?: PipelineCarriedState;
}

export interface PipelineCarriedState {
  pipelineRunId: string;
  plan: PipelineRunPlan;
  settled: Record<string, SettledStep & { error: string | null }>;
  /** Item outcomes of the step in progress at the barrier (none are running then). */
  items: Record<string, StepOutcome[]>;
  /** The first failed item's error of each step in progress (absent in states carried before it was kept). */
  errors?: Record<string, string | null>;
  failing: boolean;
}

/** What opening a pipeline run tells its workflow. */
export type PipelineRunOpened =
  | { kind: 'refused'; pipelineRunId: string; reason: string }
  | { kind: 'duplicate'; pipelineRunId: string; duplicateOf: string }
  | { kind: 'open'; plan: PipelineRunPlan };

export interface PipelineRunPlan {
  pipelineRunId: string;
  pipelineVersion: number;
  steps: PlannedStep[];
  maxParallelism: number;
  failurePolicy: FailurePolicy;
  /** Steps a retry took over as succeeded (reason `reused`). */
  reused: string[];
}

/** What preparing a step to run decided (its `when`, `forEach` and templates evaluated against PostgreSQL). */
export type StepPreparation =
  | { action: 'skip'; reason: Extract<StepReason, 'condition_false' | 'empty_list'>; detail: string }
  | { action: 'fail'; error: string }
  | { action: 'run'; itemCount: number; fanOut: boolean };

/** One item's start: the task-run input and the child's workflow id. */
export interface StepItemStart {
  itemIndex: number | null;
  workflowId: string;
  input: TaskRunInput & { runId: string };
  /** The task's name, for the child's memo (the Temporal UI shows it, like a task run's). */
  taskName?: string;
}
