/* The API's pure pipeline rules: the problems of a definition (pipeline-validation.ts) and a run's parameters
 * (pipeline-params.ts). The HTTP side, with nothing stored on a refusal, is test/e2e/pipelines-api.e2e.spec.ts. */
import { pipelineProblems } from '../../apps/api/src/pipelines/pipeline-validation';
import type { StepDraft, StepTask } from '../../apps/api/src/pipelines/pipeline-validation';
import { runParams } from '../../apps/api/src/pipeline-runs/pipeline-params';

const shell: StepTask = {
  id: '6f1c1c9e-0000-4000-8000-000000000001',
  name: 'echo',
  executor: 'shell',
  spec: { command: 'echo', args: [] },
  enabled: true,
};
const http: StepTask = {
  id: '6f1c1c9e-0000-4000-8000-000000000002',
  name: 'ping',
  executor: 'http',
  spec: { method: 'GET', url: 'https://x.test' },
  enabled: true,
};
const off: StepTask = { ...shell, id: '6f1c1c9e-0000-4000-8000-000000000003', name: 'off', enabled: false };
const tasks = new Map(
  [shell, http, off].flatMap(
    (t) =>
      [
        [t.id, t],
        [t.name, t],
      ] as const,
  ),
);
const taskOf = (ref: string) => tasks.get(ref);
const step = (s: Partial<StepDraft> & { key: string }): StepDraft => ({ task: 'echo', dependsOn: [], ...s });
const codes = (steps: StepDraft[], parameters = [{ name: 'date' }], checkTasks = true) =>
  pipelineProblems({ steps, parameters }, taskOf, checkTasks).map((p) => [p.field, p.code]);

test('a valid pipeline has no problems: references upstream through others, params, item in a fan-out', () => {
  expect(
    codes([
      step({ key: 'a', overrides: { env: { D: '{{ params.date }}' } } }),
      step({ key: 'b', dependsOn: ['a'], forEach: '{{ steps.a.outputs.rows }}', overrides: { args: ['{{ item }}-{{ itemIndex }}'] } }),
      step({
        key: 'c',
        task: 'ping',
        dependsOn: ['b'],
        when: 'steps.a.outputs.n > 0',
        overrides: { body: { x: '{{ steps.b.outputs }}' } },
      }),
    ]),
  ).toEqual([]);
});

test('every problem at once, each naming its field', () => {
  expect(
    codes([
      step({ key: 'a', when: "steps.c.status == 'failed'", task: 'nope' }),
      step({ key: 'b', task: 'off', overrides: { env: { X: '{{ params.other }}' } } }),
      step({ key: 'c', task: 'ping', overrides: { args: ['x'] }, forEach: [1], when: 'item > 0' }),
      step({ key: 'd', forEach: 'steps', overrides: { env: { Y: '{{ 1 + }}', Z: '{{ item' } } }),
    ]),
  ).toEqual([
    ['steps[0].task', 'unknown_task'],
    ['steps[0].when', 'bad_reference'],
    ['steps[1].task', 'task_disabled'],
    ['steps[1].overrides.env.X', 'bad_reference'],
    ['steps[2].overrides.args', 'bad_overrides'],
    ['steps[2].when', 'bad_reference'],
    ['steps[3].overrides.env.Z', 'bad_expression'],
    ['steps[3].forEach', 'bad_expression'],
  ]);
});

test('DAG problems carry their own fields; a cycle is named in the direction work flows', () => {
  const problems = pipelineProblems(
    { steps: [step({ key: 'a', dependsOn: ['b'] }), step({ key: 'b', dependsOn: ['a', 'a'] }), step({ key: 'B' })], parameters: [] },
    taskOf,
  );
  expect(problems).toEqual([
    expect.objectContaining({ field: 'steps[2].key', code: 'invalid_key', key: 'B' }),
    expect.objectContaining({ field: 'steps[1].dependsOn', code: 'duplicate_dependency', dependency: 'a' }),
    expect.objectContaining({ field: 'steps', code: 'cycle', cycle: ['a', 'b', 'a'], message: 'the steps form a cycle: a → b → a' }),
  ]);
});

test('without the task check, missing and disabled tasks pass (a PATCH that leaves the steps alone)', () => {
  expect(codes([step({ key: 'a', task: 'nope' }), step({ key: 'b', task: 'off' })], [], false)).toEqual([]);
});

test('a literal forEach over the limit', () => {
  expect(codes([step({ key: 'a', forEach: Array.from({ length: 1001 }, (_, i) => i) })])).toEqual([['steps[0].forEach', 'too_many_items']]);
});

test('run parameters: defaults filled in; unknown and missing refused together', () => {
  const declared = [{ name: 'date', default: '2026-12-01' }, { name: 'region' }, { name: 'verbose', required: false }];
  expect(runParams(declared, { region: 'eu' })).toEqual({ region: 'eu', date: '2026-12-01' });
  expect(runParams(declared, { region: 'eu', date: 'x', verbose: true })).toEqual({ region: 'eu', date: 'x', verbose: true });
  expect(() => runParams(declared, { nope: 1 })).toThrow(
    expect.objectContaining({
      code: 'PIPELINE_PARAMS_INVALID',
      details: [expect.objectContaining({ field: 'params.nope' }), expect.objectContaining({ field: 'params.region' })],
    }),
  );
});
