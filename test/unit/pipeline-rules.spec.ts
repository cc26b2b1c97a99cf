/* The pipeline rules against their documentation: the rule table in docs/pipelines.md, cell by cell,
 * against the contracts' ruleHolds/decideStep and the independent reference evaluator; and the other
 * pure rules (validation, cycles, retry reuse, final status, fan-out) by example and by property. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import type { PlannedStep, SettledStep, StepOutcome, TriggerRule } from '@task-scheduler/contracts';
import {
  PIPELINE_LIMITS,
  STEP_OUTCOMES,
  TRIGGER_RULES,
  combineItems,
  decideStep,
  findCycle,
  pipelineOutcome,
  reusableSteps,
  ruleHolds,
  validateDag,
} from '@task-scheduler/contracts';
import { referencePipeline, referenceRule } from '../support/pipeline-reference';
import type { ReferenceStep, WouldBe } from '../support/pipeline-reference';

interface Cell {
  rule: TriggerRule;
  upstream: StepOutcome[];
  runs: boolean;
}

/** The table under "## The rule table" in docs/pipelines.md, as cells. */
function ruleTable(): { rules: string[]; rows: StepOutcome[][]; cells: Cell[] } {
  const md = readFileSync(join(__dirname, '../../docs/pipelines.md'), 'utf8');
  const section = md.split(/^## The rule table$/m)[1]?.split(/^## /m)[0];
  if (!section) throw new Error('docs/pipelines.md has no "## The rule table" section');
  const lines = section.split('\n').filter((l) => l.startsWith('|'));
  const split = (l: string) => l.split('|').slice(1, -1).map((c) => c.trim());
  const rules = split(lines[0]).slice(1).map((h) => h.replace(/`/g, ''));
  const rows: StepOutcome[][] = [];
  const cells: Cell[] = [];
  for (const line of lines.slice(2)) {
    const [label, ...values] = split(line);
    const upstream = label.split(',').map((o) => o.trim()) as StepOutcome[];
    rows.push(upstream);
    expect(values).toHaveLength(rules.length);
    values.forEach((v, i) => {
      expect(['runs', 'skipped']).toContain(v);
      cells.push({ rule: rules[i] as TriggerRule, upstream, runs: v === 'runs' });
    });
  }
  return { rules, rows, cells };
}

const table = ruleTable();
const cellName = (c: Cell) => `${c.rule} over {${c.upstream.join(', ')}} ${c.runs ? 'runs' : 'is skipped'}`;

describe('the rule table in docs/pipelines.md', () => {
  test('has every rule once and every non-empty set of outcomes once', () => {
    expect([...table.rules].sort()).toEqual([...TRIGGER_RULES].sort());
    const sets = table.rows.map((r) => {
      for (const o of r) expect(STEP_OUTCOMES).toContain(o);
      expect(new Set(r).size).toBe(r.length);
      return [...r].sort().join(',');
    });
    expect(new Set(sets).size).toBe(15);
    expect(sets).toHaveLength(15);
    expect(table.cells).toHaveLength(15 * 8);
  });

  test.each(table.cells.map((c) => [cellName(c), c] as const))('%s: ruleHolds and decideStep agree', (_, cell) => {
    expect(ruleHolds(cell.rule, cell.upstream)).toBe(cell.runs);
    // Counts do not matter, only which outcomes occur.
    expect(ruleHolds(cell.rule, [...cell.upstream, ...cell.upstream])).toBe(cell.runs);
    const step: PlannedStep = { key: 'x', dependsOn: cell.upstream.map((_, i) => `u${i}`), triggerRule: cell.rule };
    const decided = decideStep(step, cell.upstream, { failing: false, policy: 'continue', cancelled: false });
    expect(decided).toEqual(cell.runs ? { action: 'run' } : { action: 'settle', outcome: 'skipped', reason: 'trigger_rule' });
  });

  test.each(table.cells.map((c) => [cellName(c), c] as const))('%s: the reference evaluator agrees, rule and whole run', (_, cell) => {
    expect(referenceRule(cell.rule, cell.upstream)).toBe(cell.runs);
    // A run whose upstream steps end with exactly these outcomes, then the step under test.
    const make: Record<StepOutcome, WouldBe> = {
      succeeded: { kind: 'items', items: ['succeeded'] },
      failed: { kind: 'items', items: ['failed'] },
      skipped: { kind: 'condition_false' },
      cancelled: { kind: 'items', items: ['cancelled'] },
    };
    const upstream: ReferenceStep[] = cell.upstream.map((_, i) => ({ key: `u${i}`, dependsOn: [], triggerRule: 'all_success' }));
    const steps = [...upstream, { key: 'x', dependsOn: upstream.map((u) => u.key), triggerRule: cell.rule }];
    const wouldBe = Object.fromEntries(cell.upstream.map((o, i) => [`u${i}`, make[o]]));
    const result = referencePipeline(steps, wouldBe, 'continue');
    expect(cell.upstream.map((_, i) => result.steps[`u${i}`].outcome)).toEqual(cell.upstream);
    expect(result.steps.x).toEqual(cell.runs ? { outcome: 'succeeded', reason: 'ran' } : { outcome: 'skipped', reason: 'trigger_rule' });
  });

  test('a step without upstream steps runs under every rule', () => {
    for (const rule of TRIGGER_RULES) {
      expect(ruleHolds(rule, [])).toBe(true);
      expect(referenceRule(rule, [])).toBe(true);
    }
  });

  test('ruleHolds equals the reference over any upstream list (fast-check)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...TRIGGER_RULES), fc.array(fc.constantFrom(...STEP_OUTCOMES), { maxLength: 8 }), (rule, up) => {
        expect(ruleHolds(rule, up)).toBe(referenceRule(rule, up));
      }),
      { numRuns: 500 },
    );
  });
});

describe('decideStep: failure policy and cancellation', () => {
  const step = (triggerRule: TriggerRule): PlannedStep => ({ key: 'x', dependsOn: ['a'], triggerRule });
  test('after a failure under fail_fast only failure-aware steps are evaluated', () => {
    const ctx = { failing: true, policy: 'fail_fast', cancelled: false } as const;
    expect(decideStep(step('all_success'), ['succeeded'], ctx)).toEqual({ action: 'settle', outcome: 'skipped', reason: 'fail_fast' });
    expect(decideStep(step('all_done'), ['failed'], ctx)).toEqual({ action: 'settle', outcome: 'skipped', reason: 'fail_fast' });
    expect(decideStep(step('one_failed'), ['failed'], ctx)).toEqual({ action: 'run' });
    expect(decideStep(step('always'), ['succeeded'], ctx)).toEqual({ action: 'run' });
    expect(decideStep(step('all_failed'), ['succeeded'], ctx)).toEqual({ action: 'settle', outcome: 'skipped', reason: 'trigger_rule' });
  });
  test('under continue a failure elsewhere changes nothing; a cancelled run starts nothing', () => {
    expect(decideStep(step('all_success'), ['succeeded'], { failing: true, policy: 'continue', cancelled: false })).toEqual({ action: 'run' });
    expect(decideStep(step('always'), ['succeeded'], { failing: false, policy: 'continue', cancelled: true })).toEqual({
      action: 'settle',
      outcome: 'cancelled',
      reason: 'pipeline_cancelled',
    });
  });
});

describe('validateDag and findCycle', () => {
  const s = (key: string, ...dependsOn: string[]) => ({ key, dependsOn });

  test('a valid DAG has no problems', () => {
    expect(validateDag([s('a'), s('b', 'a'), s('c', 'a'), s('d', 'b', 'c')])).toEqual([]);
  });

  test('a cycle is named in the direction work flows, a → b → c → a', () => {
    const steps = [s('a', 'c'), s('b', 'a'), s('c', 'b'), s('d', 'a')];
    expect(findCycle(steps)).toEqual(['a', 'b', 'c', 'a']);
    expect(validateDag(steps)).toEqual([
      { code: 'cycle', cycle: ['a', 'b', 'c', 'a'], message: 'the steps form a cycle: a → b → c → a' },
    ]);
    expect(findCycle([s('a', 'a')])).toEqual(['a', 'a']);
  });

  test('keys and dependencies: each problem once, in step order', () => {
    expect(validateDag([s('a'), s('a'), s('Bad'), s('c', 'a', 'a', 'zz')]).map((p) => p.code)).toEqual([
      'duplicate_key',
      'invalid_key',
      'duplicate_dependency',
      'unknown_dependency',
    ]);
    expect(validateDag([])).toEqual([{ code: 'too_many_steps', message: 'a pipeline needs at least one step' }]);
    const many = Array.from({ length: PIPELINE_LIMITS.maxSteps + 1 }, (_, i) => s(`s${i}`));
    expect(validateDag(many).map((p) => p.code)).toEqual(['too_many_steps']);
    const wide = [...many.slice(0, 51), s('w', ...many.slice(0, 51).map((x) => x.key))];
    expect(validateDag(wide).map((p) => p.code)).toEqual(['too_many_dependencies']);
  });

  /** Kahn's algorithm: whether every step can be ordered after its (known) dependencies. */
  function sorts(steps: { key: string; dependsOn: string[] }[]): boolean {
    const keys = new Set(steps.map((x) => x.key));
    const placed = new Set<string>();
    for (let progress = true; progress; ) {
      progress = false;
      for (const x of steps) {
        if (!placed.has(x.key) && x.dependsOn.every((d) => !keys.has(d) || placed.has(d))) {
          placed.add(x.key);
          progress = true;
        }
      }
    }
    return placed.size === keys.size;
  }

  test('findCycle finds a cycle exactly when no topological order exists, and the cycle is real (fast-check)', () => {
    const graph = fc.integer({ min: 1, max: 12 }).chain((n) =>
      fc.tuple(
        ...Array.from({ length: n }, (_, i) =>
          fc.uniqueArray(fc.integer({ min: 0, max: n }), { maxLength: 3 }).map((ds) => ({
            key: `k${i}`,
            dependsOn: ds.map((d) => `k${d}`), // k<n> is unknown: ignored by both
          })),
        ),
      ),
    );
    fc.assert(
      fc.property(graph, (steps) => {
        const cycle = findCycle(steps);
        expect(cycle !== null).toBe(!sorts(steps));
        if (cycle) {
          expect(cycle[0]).toBe(cycle[cycle.length - 1]);
          expect(new Set(cycle.slice(1)).size).toBe(cycle.length - 1);
          const deps = new Map(steps.map((x) => [x.key, x.dependsOn]));
          for (let i = 1; i < cycle.length; i++) expect(deps.get(cycle[i])).toContain(cycle[i - 1]);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('reusableSteps', () => {
  const p = (key: string, ...dependsOn: string[]): PlannedStep => ({ key, dependsOn, triggerRule: 'all_success' });
  test('a retry reuses the succeeded steps none of whose upstream steps re-run', () => {
    const steps = [p('a'), p('b', 'a'), p('c', 'a'), p('d', 'b', 'c'), p('e', 'd')];
    const prev: Record<string, StepOutcome> = { a: 'succeeded', b: 'succeeded', c: 'failed', d: 'skipped', e: 'skipped' };
    expect([...reusableSteps(steps, prev)].sort()).toEqual(['a', 'b']);
    expect([...reusableSteps(steps, { ...prev, a: 'cancelled' })]).toEqual([]);
    // A succeeded step below a skipped one runs again too.
    expect([...reusableSteps([p('a'), p('b', 'a')], { a: 'skipped', b: 'succeeded' })]).toEqual([]);
    expect([...reusableSteps(steps, Object.fromEntries(steps.map((s) => [s.key, 'succeeded'])))].sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
  });
});

describe('pipelineOutcome', () => {
  const steps: PlannedStep[] = [
    { key: 'a', dependsOn: [], triggerRule: 'all_success' },
    { key: 'b', dependsOn: ['a'], triggerRule: 'all_success' },
    { key: 'on_failure', dependsOn: ['a'], triggerRule: 'one_failed' },
  ];
  const st = (outcome: StepOutcome, reason: SettledStep['reason'] = 'ran'): SettledStep => ({ outcome, reason });

  test('a failure that a failure-aware step ran for is handled; skipped steps never fail a run', () => {
    expect(pipelineOutcome(steps, { a: st('failed'), b: st('skipped', 'trigger_rule'), on_failure: st('succeeded') }, false)).toEqual({
      status: 'succeeded',
      error: null,
    });
    expect(pipelineOutcome(steps, { a: st('succeeded'), b: st('succeeded'), on_failure: st('skipped', 'trigger_rule') }, false)).toEqual({
      status: 'succeeded',
      error: null,
    });
  });

  test('an unhandled failure or a cancelled step fails the run, named in the error', () => {
    // The handler failing itself does not undo the handling of a; its own failure counts.
    expect(pipelineOutcome(steps, { a: st('failed'), b: st('skipped', 'trigger_rule'), on_failure: st('failed') }, false)).toEqual({
      status: 'failed',
      error: 'step on_failure failed',
    });
    // A handler that did not run (its condition was false) handles nothing.
    expect(
      pipelineOutcome(steps, { a: st('failed'), b: st('skipped', 'trigger_rule'), on_failure: st('skipped', 'condition_false') }, false),
    ).toEqual({ status: 'failed', error: 'step a failed' });
    expect(pipelineOutcome(steps, { a: st('succeeded'), b: st('cancelled'), on_failure: st('skipped', 'trigger_rule') }, false)).toEqual({
      status: 'failed',
      error: 'step b cancelled',
    });
  });

  test('a cancelled pipeline run is cancelled', () => {
    expect(pipelineOutcome(steps, { a: st('succeeded') }, true).status).toBe('cancelled');
  });
});

describe('combineItems', () => {
  test.each([
    [[], 'skipped'],
    [['succeeded'], 'succeeded'],
    [['succeeded', 'succeeded'], 'succeeded'],
    [['succeeded', 'failed', 'cancelled'], 'failed'],
    [['cancelled', 'succeeded'], 'cancelled'],
    [['failed'], 'failed'],
  ] as [StepOutcome[], StepOutcome][])('%j → %s', (items, expected) => {
    expect(combineItems(items)).toBe(expected);
  });
});
