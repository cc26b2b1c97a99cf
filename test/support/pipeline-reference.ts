/* A small reference evaluator of the pipeline rules as docs/pipelines.md states them, written from the
 * docs and independent of libs/contracts' implementation (only the vocabulary types are shared), so
 * tests can check the workflow and the contracts against a second reading of the same text.
 *
 * It runs the pipeline one step at a time, in definition order: after each step ends it settles
 * every step whose fate is known without running it, then runs the first ready step. That is the
 * workflow's schedule with maxParallelism 1, where a failure never races another running step. Under
 * `continue` the order cannot change any outcome (no rule looks at time), so the result holds for
 * every maxParallelism; under `fail_fast` it holds for maxParallelism 1, and for any when no step
 * fails. */
import type { FailurePolicy, StepOutcome, StepReason, TriggerRule } from '@task-scheduler/contracts';

export interface ReferenceStep {
  key: string;
  dependsOn: string[];
  triggerRule: TriggerRule;
}

/**
 * What a step does if it is started: its `when` is false, its `forEach` is empty, its preparation
 * fails, or it runs items that end so (one item for a step without `forEach`; `cancelled` is an item
 * whose run was cancelled on its own, through the API: an item whose task turned out disabled fails).
 */
export type WouldBe =
  | { kind: 'condition_false' }
  | { kind: 'empty_list' }
  | { kind: 'prepare_failed' }
  | { kind: 'items'; items: Exclude<StepOutcome, 'skipped'>[] };

export interface ReferenceResult {
  steps: Record<string, { outcome: StepOutcome; reason: StepReason }>;
  status: 'succeeded' | 'failed';
  /** The steps in the order they were started (ran items or were prepared). */
  started: string[];
}

/** The rules written for failures: they still run after a failure under fail_fast, and handle the failures they ran for. */
const FOR_FAILURES: TriggerRule[] = ['one_failed', 'all_failed', 'always'];

/** The docs' rule table, one sentence per rule. */
export function referenceRule(rule: TriggerRule, upstream: readonly StepOutcome[]): boolean {
  if (upstream.length === 0) return true; // a step with no upstream steps always runs
  const count = (o: StepOutcome) => upstream.filter((u) => u === o).length;
  const n = upstream.length;
  switch (rule) {
    case 'all_success': // every upstream step succeeded
      return count('succeeded') === n;
    case 'all_failed': // every upstream step failed
      return count('failed') === n;
    case 'all_done': // every upstream step is final (always so when a step is evaluated)
      return true;
    case 'always':
      return true;
    case 'one_success': // at least one upstream step succeeded
      return count('succeeded') > 0;
    case 'one_failed': // at least one upstream step failed
      return count('failed') > 0;
    case 'none_failed': // every upstream step succeeded or was skipped
      return count('succeeded') + count('skipped') === n;
    case 'none_failed_min_one_success': // none_failed, and at least one succeeded
      return count('succeeded') + count('skipped') === n && count('succeeded') > 0;
  }
}

/** Fan-out: all items succeeded → succeeded; else any failed → failed; else cancelled. */
function referenceItems(items: readonly StepOutcome[]): StepOutcome {
  if (items.length === 0) return 'skipped';
  if (!items.some((i) => i !== 'succeeded')) return 'succeeded';
  return items.some((i) => i === 'failed') ? 'failed' : 'cancelled';
}

export function referencePipeline(
  steps: readonly ReferenceStep[],
  wouldBe: Readonly<Record<string, WouldBe>>,
  policy: FailurePolicy,
): ReferenceResult {
  const done: ReferenceResult['steps'] = {};
  const started: string[] = [];
  let failing = false;
  const finish = (key: string, outcome: StepOutcome, reason: StepReason) => {
    done[key] = { outcome, reason };
    if (outcome === 'failed') failing = true;
  };
  const ready = (s: ReferenceStep) => !done[s.key] && s.dependsOn.every((d) => done[d]);
  const upstreamOf = (s: ReferenceStep) => s.dependsOn.map((d) => done[d].outcome);

  for (let guard = 0; guard <= steps.length; guard++) {
    // Settle what does not run, until nothing changes.
    for (let changed = true; changed; ) {
      changed = false;
      for (const s of steps.filter(ready)) {
        if (failing && policy === 'fail_fast' && !FOR_FAILURES.includes(s.triggerRule)) finish(s.key, 'skipped', 'fail_fast');
        else if (!referenceRule(s.triggerRule, upstreamOf(s))) finish(s.key, 'skipped', 'trigger_rule');
        else continue;
        changed = true;
      }
    }
    const next = steps.find(ready);
    if (!next) break;
    started.push(next.key);
    const w = wouldBe[next.key] ?? { kind: 'items', items: ['succeeded'] };
    if (w.kind === 'condition_false') finish(next.key, 'skipped', 'condition_false');
    else if (w.kind === 'empty_list') finish(next.key, 'skipped', 'empty_list');
    else if (w.kind === 'prepare_failed') finish(next.key, 'failed', 'prepare_failed');
    else finish(next.key, referenceItems(w.items), 'ran');
  }

  // Final status: failed when a step was cancelled, or failed with no failure-aware step right below it that ran.
  const handled = (key: string) =>
    steps.some((d) => d.dependsOn.includes(key) && FOR_FAILURES.includes(d.triggerRule) && done[d.key]?.reason === 'ran');
  const bad = steps.some((s) => done[s.key]?.outcome === 'cancelled' || (done[s.key]?.outcome === 'failed' && !handled(s.key)));
  return { steps: done, status: bad ? 'failed' : 'succeeded', started };
}
