/* The pipelines API over HTTP against the real API, PostgreSQL and Temporal: definitions (validation with
 * nothing stored, versions, ETag/If-Match, delete in use), tenancy and permissions, and starting runs
 * (parameters, Idempotency-Key, listing). Running pipelines end to end is pipelines.e2e.spec.ts. */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { pipelineClient, stepOf, stepStates } from '../support/pipelines';
import type { PipelineClient } from '../support/pipelines';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';

let stack: TestStack;
let key: string;
let tenantId: string;
/** Another tenant, with its own task and pipeline. */
let other: { apiKey: string; taskId: string; pipelineId: string };
let shellTask: { id: string; name: string };
let httpTask: { id: string; name: string };
let scriptTask: { id: string; name: string };
/** Runs for a minute: long enough for a test to act on a running step. */
let sleepTask: { id: string; name: string };
let pipelines: PipelineClient;

type Res = Awaited<ReturnType<TestStack['request']>>;
const send = (method: string, path: string, body?: unknown, headers?: Record<string, string>, apiKey = key): Promise<Res> =>
  stack.request(method, path, { body, headers, apiKey });

async function ok(method: string, path: string, body?: unknown, apiKey = key): Promise<any> {
  const res = await send(method, path, body, undefined, apiKey);
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

let n = 0;
const unique = (base: string): string => `${base}-${Date.now().toString(36)}-${++n}`;

/** Rows of the tenant's pipeline tables: a refused request must leave them as they were. */
async function counts(): Promise<Record<string, number>> {
  const [row] = await stack.db.query(
    `SELECT (SELECT count(*) FROM pipelines WHERE tenant_id = $1)::int AS pipelines,
            (SELECT count(*) FROM pipeline_versions WHERE tenant_id = $1)::int AS versions,
            (SELECT count(*) FROM pipeline_runs WHERE tenant_id = $1)::int AS runs`,
    [tenantId],
  );
  return row;
}

beforeAll(async () => {
  stack = await startStack('pipelines-api');
  ({ apiKey: key, tenantId } = await stack.createTenant(unique('pipelines-api')));
  const task = async (body: Record<string, unknown>, apiKey = key) =>
    ok('POST', '/v1/tasks', { retry: { maximumAttempts: 1 }, ...body }, apiKey);
  shellTask = await task({ name: unique('echo'), executor: 'shell', shell: { command: 'echo', args: ['x'] } });
  scriptTask = await task({ name: unique('script'), executor: 'shell', shell: { script: 'true' } });
  sleepTask = await task({ name: unique('sleep'), executor: 'shell', shell: { command: 'sleep', args: ['60'] } });
  pipelines = pipelineClient(stack, key);
  httpTask = await task({ name: unique('http'), executor: 'http', http: { method: 'GET', url: 'https://example.com/{id}' } });
  const b = await stack.createTenant(unique('pipelines-api-b'));
  const bTask = await task({ name: unique('b-task'), executor: 'shell', shell: { command: 'true' } }, b.apiKey);
  const bPipeline = await ok('POST', '/v1/pipelines', { name: unique('b'), steps: [{ key: 'a', task: bTask.id }] }, b.apiKey);
  other = { apiKey: b.apiKey, taskId: bTask.id, pipelineId: bPipeline.id };
});
afterAll(async () => stack?.stop());

/** Waits until step `key` of the pipeline run is running (its task run started), at most 30 s. */
async function runningStep(pipelineRunId: string, key: string): Promise<void> {
  await pipelines.waitForPipelineRun(pipelineRunId, (r) => stepOf(r, key).status === 'running' && stepOf(r, key).runId !== null, 30_000);
}

const linear = (name = unique('linear')) => ({
  name,
  description: 'a then b',
  parameters: [
    { name: 'date', default: '2026-12-01' },
    { name: 'region', required: true },
    { name: 'verbose', required: false },
  ],
  steps: [
    { key: 'a', task: shellTask.name, overrides: { env: { DAY: '{{ params.date }}' } } },
    { key: 'b', task: shellTask.id, dependsOn: ['a'], when: "steps.a.outputs.count > 0 && params.region != ''" },
  ],
});

describe('definitions', () => {
  test('create resolves tasks by name or id; get, list and versions show it; ETag is the version', async () => {
    const res = await send('POST', '/v1/pipelines', linear());
    expect(res.status).toBe(201);
    expect(res.headers.get('etag')).toBe('"1"');
    expect(res.headers.get('location')).toBe(`/v1/pipelines/${res.body.id}`);
    expect(res.body).toMatchObject({
      tenantId,
      version: 1,
      maxParallelism: 10,
      failurePolicy: 'fail_fast',
      alerts: null,
      steps: [
        { key: 'a', task: shellTask.id, taskName: shellTask.name, dependsOn: [], triggerRule: 'all_success', when: null, forEach: null },
        { key: 'b', task: shellTask.id, dependsOn: ['a'], overrides: {} },
      ],
    });
    const got = await send('GET', `/v1/pipelines/${res.body.id}`);
    expect(got.status).toBe(200);
    expect(got.headers.get('etag')).toBe('"1"');
    expect(got.body).toEqual(res.body);
    const list = await ok('GET', '/v1/pipelines?limit=200');
    expect(list.items.map((p: any) => p.id)).toContain(res.body.id);
    const versions = await ok('GET', `/v1/pipelines/${res.body.id}/versions`);
    expect(versions.items).toHaveLength(1);
    expect(versions.items[0]).toMatchObject({ version: 1, action: 'create', name: res.body.name });
    expect(versions.items[0].changedFields).toEqual(expect.arrayContaining(['steps', 'parameters', 'name']));
    expect(versions.items[0].definition.steps[0]).toMatchObject({ key: 'a', taskId: shellTask.id });
  });

  test('PATCH: If-Match, a new version only for a change, changed fields recorded, merge-patch accepted', async () => {
    const p = await ok('POST', '/v1/pipelines', linear());
    const stale = await send('PATCH', `/v1/pipelines/${p.id}`, { maxParallelism: 2 }, { 'if-match': '"7"' });
    expect(stale.status).toBe(412);
    expect(stale.body.error.code).toBe('PIPELINE_VERSION_MISMATCH');
    const changed = await send('PATCH', `/v1/pipelines/${p.id}`, { maxParallelism: 2, description: null }, { 'if-match': '"1"' });
    expect(changed.status).toBe(200);
    expect(changed.headers.get('etag')).toBe('"2"');
    expect(changed.body).toMatchObject({ version: 2, maxParallelism: 2, description: null });
    const same = await send('PATCH', `/v1/pipelines/${p.id}`, { maxParallelism: 2 }, { 'content-type': 'application/merge-patch+json' });
    expect(same.status).toBe(200);
    expect(same.body.version).toBe(2);
    const versions = await ok('GET', `/v1/pipelines/${p.id}/versions`);
    expect(versions.items.map((v: any) => [v.version, v.changedFields])).toEqual([
      [2, ['description', 'maxParallelism']],
      [1, expect.any(Array)],
    ]);
    const paged = await ok('GET', `/v1/pipelines/${p.id}/versions?limit=1`);
    expect(paged.items.map((v: any) => v.version)).toEqual([2]);
    const rest = await ok('GET', `/v1/pipelines/${p.id}/versions?limit=1&cursor=${paged.nextCursor}`);
    expect(rest).toEqual({ items: [expect.objectContaining({ version: 1 })], nextCursor: null });
    const steps = await ok('PATCH', `/v1/pipelines/${p.id}`, { steps: [{ key: 'only', task: scriptTask.id }], parameters: [] });
    expect(steps).toMatchObject({ version: 3, steps: [{ key: 'only', task: scriptTask.id }], parameters: [] });
  });

  test('a name is unique among live pipelines', async () => {
    const body = linear();
    await ok('POST', '/v1/pipelines', body);
    const before = await counts();
    const again = await send('POST', '/v1/pipelines', body);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('PIPELINE_NAME_TAKEN');
    expect(await counts()).toEqual(before);
  });
});

describe('validation: 422 PIPELINE_INVALID with every problem, nothing stored', () => {
  const step = (s: Record<string, unknown>) => ({ task: shellTask.id, ...s });
  const cases: [string, () => Record<string, unknown>, Record<string, unknown>[]][] = [
    [
      'a cycle, named',
      () => ({ steps: [step({ key: 'a', dependsOn: ['c'] }), step({ key: 'b', dependsOn: ['a'] }), step({ key: 'c', dependsOn: ['b'] })] }),
      [{ field: 'steps', code: 'cycle', cycle: ['a', 'b', 'c', 'a'], message: 'the steps form a cycle: a → b → c → a' }],
    ],
    [
      'duplicate and invalid keys, an unknown dependency',
      () => ({ steps: [step({ key: 'a' }), step({ key: 'a' }), step({ key: 'Bad-Key', dependsOn: ['nope'] })] }),
      [
        { field: 'steps[0].key', code: 'duplicate_key', key: 'a' },
        { field: 'steps[2].key', code: 'invalid_key' },
        { field: 'steps[2].dependsOn', code: 'unknown_dependency', dependency: 'nope' },
      ],
    ],
    ['no steps', () => ({ steps: [] }), [{ field: 'steps', code: 'too_many_steps' }]],
    [
      'more steps than the limit',
      () => ({ steps: Array.from({ length: 201 }, (_, i) => step({ key: `s${i}` })) }),
      [{ field: 'steps', code: 'too_many_steps' }],
    ],
    ['an unknown task', () => ({ steps: [step({ key: 'a', task: 'no-such-task' })] }), [{ field: 'steps[0].task', code: 'unknown_task' }]],
    [
      "another tenant's task id, like a missing one",
      () => ({ steps: [step({ key: 'a', task: other.taskId })] }),
      [{ field: 'steps[0].task', code: 'unknown_task' }],
    ],
    [
      'overrides the task does not take',
      () => ({
        steps: [
          step({ key: 'a', task: httpTask.id, overrides: { env: { A: '1' } } }),
          step({ key: 'b', task: scriptTask.id, overrides: { args: ['x'] } }),
        ],
      }),
      [
        { field: 'steps[0].overrides.env', code: 'bad_overrides' },
        { field: 'steps[1].overrides.args', code: 'bad_overrides' },
      ],
    ],
    [
      'expressions that do not parse',
      () => ({
        steps: [
          step({ key: 'a', when: 'steps.a.status ==' }),
          step({ key: 'b', overrides: { env: { X: '{{ 1 + }}' } } }),
          step({ key: 'c', forEach: 'not a template' }),
        ],
      }),
      [
        { field: 'steps[0].when', code: 'bad_expression' },
        { field: 'steps[1].overrides.env.X', code: 'bad_expression' },
        { field: 'steps[2].forEach', code: 'bad_expression' },
      ],
    ],
    [
      'references to a step not upstream, an undeclared parameter, item outside forEach',
      () => ({
        parameters: [{ name: 'date', default: 'x' }],
        steps: [
          step({ key: 'a', when: "steps.b.status == 'succeeded'" }),
          step({ key: 'b', overrides: { env: { X: '{{ params.nope }}', Y: '{{ item }}' } } }),
          step({ key: 'c', forEach: ['x'], when: 'item == "x"' }),
        ],
      }),
      [
        { field: 'steps[0].when', code: 'bad_reference', reference: 'steps.b' },
        { field: 'steps[1].overrides.env.X', code: 'bad_reference', reference: 'params.nope' },
        { field: 'steps[1].overrides.env.Y', code: 'bad_reference', reference: 'item' },
        { field: 'steps[2].when', code: 'bad_reference', reference: 'item' },
      ],
    ],
    [
      'a literal forEach over the item limit',
      () => ({ steps: [step({ key: 'a', forEach: Array.from({ length: 1001 }, (_, i) => i) })] }),
      [{ field: 'steps[0].forEach', code: 'too_many_items', limit: 1000 }],
    ],
  ];
  test.each(cases)('%s', async (_name, body, details) => {
    const before = await counts();
    const res = await send('POST', '/v1/pipelines', { name: unique('invalid'), ...body() });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('PIPELINE_INVALID');
    expect(res.body.error.details).toEqual(expect.arrayContaining(details.map((d) => expect.objectContaining(d))));
    expect(res.body.error.details).toHaveLength(details.length);
    expect(await counts()).toEqual(before);
  });

  test('a disabled task is task_disabled; a valid fan-out reading item and upstream outputs is accepted', async () => {
    const disabled = await ok('POST', '/v1/tasks', { name: unique('off'), executor: 'shell', shell: { command: 'true' } });
    await ok('POST', `/v1/tasks/${disabled.id}/disable`);
    const before = await counts();
    const res = await send('POST', '/v1/pipelines', { name: unique('disabled'), steps: [{ key: 'a', task: disabled.id }] });
    expect(res.status).toBe(422);
    expect(res.body.error.details).toEqual([expect.objectContaining({ field: 'steps[0].task', code: 'task_disabled' })]);
    expect(await counts()).toEqual(before);
    const fan = await send('POST', '/v1/pipelines', {
      name: unique('fan'),
      steps: [
        { key: 'list', task: shellTask.id },
        {
          key: 'each',
          task: shellTask.id,
          dependsOn: ['list'],
          forEach: '{{ steps.list.outputs.rows }}',
          overrides: { args: ['{{ item }}', '{{ itemIndex }}'] },
        },
        {
          key: 'done',
          task: httpTask.id,
          dependsOn: ['each'],
          triggerRule: 'all_done',
          overrides: { body: { rows: '{{ steps.each.outputs }}' } },
        },
      ],
    });
    expect(fan.status).toBe(201);
  });

  test('a PATCH is validated as a whole and stores nothing when refused', async () => {
    const p = await ok('POST', '/v1/pipelines', linear());
    const before = await counts();
    const res = await send('PATCH', `/v1/pipelines/${p.id}`, { parameters: [] });
    expect(res.status).toBe(422);
    expect(res.body.error.details.map((d: any) => [d.field, d.code])).toEqual([
      ['steps[0].overrides.env.DAY', 'bad_reference'],
      ['steps[1].when', 'bad_reference'],
    ]);
    expect(await counts()).toEqual(before);
    expect((await ok('GET', `/v1/pipelines/${p.id}`)).version).toBe(1);
  });

  test('shape errors are 400 VALIDATION_FAILED', async () => {
    for (const body of [
      { name: unique('x'), steps: [{ key: 'a', task: shellTask.id }], maxParallelism: 501 },
      { name: unique('x'), steps: [{ key: 'a', task: shellTask.id }], maxParallelism: 0 },
      { name: unique('x'), steps: [{ key: 'a', task: shellTask.id, triggerRule: 'sometimes' }] },
      { name: unique('x'), steps: [{ key: 'a', task: shellTask.id }], parameters: [{ name: '1bad' }] },
      { name: unique('x'), steps: [{ key: 'a', task: shellTask.id }], parameters: [{ name: 'p' }, { name: 'p' }] },
      { name: unique('x'), steps: [{ key: 'a', task: shellTask.id, forEach: 3 }] },
    ]) {
      const res = await send('POST', '/v1/pipelines', body);
      expect([res.status, res.body.error?.code, body]).toEqual([400, 'VALIDATION_FAILED', body]);
    }
  });
});

describe('tenancy and permissions', () => {
  test("another tenant's pipeline and pipeline run are 404, for reads and writes", async () => {
    for (const [method, path] of [
      ['GET', `/v1/pipelines/${other.pipelineId}`],
      ['GET', `/v1/pipelines/${other.pipelineId}/versions`],
      ['PATCH', `/v1/pipelines/${other.pipelineId}`],
      ['DELETE', `/v1/pipelines/${other.pipelineId}`],
      ['POST', `/v1/pipelines/${other.pipelineId}/runs`],
    ]) {
      const res = await send(method, path, method === 'GET' || method === 'DELETE' ? undefined : {});
      expect([method, path, res.status, res.body.error.code]).toEqual([method, path, 404, 'PIPELINE_NOT_FOUND']);
    }
    const run = await ok('POST', `/v1/pipelines/${other.pipelineId}/runs`, {}, other.apiKey);
    for (const [method, path] of [
      ['GET', `/v1/pipeline-runs/${run.id}`],
      ['POST', `/v1/pipeline-runs/${run.id}/cancel`],
      ['POST', `/v1/pipeline-runs/${run.id}/retry`],
    ]) {
      const res = await send(method, path);
      expect([path, res.status, res.body.error.code]).toEqual([path, 404, 'PIPELINE_RUN_NOT_FOUND']);
    }
    const list = await ok('GET', `/v1/pipeline-runs?pipelineId=${other.pipelineId}`);
    expect(list.items).toEqual([]);
  });

  test('a read-only key reads but cannot write pipelines or start runs', async () => {
    const p = await ok('POST', '/v1/pipelines', linear());
    const ro = await ok('POST', '/v1/api-keys', { name: 'ro', role: 'readonly' });
    expect((await send('GET', `/v1/pipelines/${p.id}`, undefined, undefined, ro.key)).status).toBe(200);
    expect((await send('GET', '/v1/pipeline-runs', undefined, undefined, ro.key)).status).toBe(200);
    const before = await counts();
    for (const [method, path, body, permission] of [
      ['POST', '/v1/pipelines', linear(), 'pipelines:write'],
      ['PATCH', `/v1/pipelines/${p.id}`, { maxParallelism: 3 }, 'pipelines:write'],
      ['DELETE', `/v1/pipelines/${p.id}`, undefined, 'pipelines:write'],
      ['POST', `/v1/pipelines/${p.id}/runs`, { params: { region: 'eu' } }, 'runs:execute'],
    ] as const) {
      const res = await send(method, path, body, undefined, ro.key);
      expect([path, res.status, res.body.error.code]).toEqual([path, 403, 'FORBIDDEN']);
      expect(JSON.stringify(res.body.error)).toContain(permission);
    }
    expect(await counts()).toEqual(before);
  });
});

describe('runs', () => {
  test('parameters: unknown and missing refused together, defaults applied and stored', async () => {
    const p = await ok('POST', '/v1/pipelines', linear());
    const before = await counts();
    const bad = await send('POST', `/v1/pipelines/${p.id}/runs`, { params: { nope: 1 } });
    expect(bad.status).toBe(422);
    expect(bad.body.error.code).toBe('PIPELINE_PARAMS_INVALID');
    expect(bad.body.error.details.map((d: any) => d.field).sort()).toEqual(['params.nope', 'params.region']);
    expect(await counts()).toEqual(before);
    const res = await send('POST', `/v1/pipelines/${p.id}/runs`, { params: { region: 'eu' } });
    expect(res.status).toBe(202);
    expect(res.headers.get('location')).toBe(`/v1/pipeline-runs/${res.body.id}`);
    expect(res.body).toMatchObject({
      pipelineId: p.id,
      pipelineName: p.name,
      pipelineVersion: 1,
      trigger: 'manual',
      params: { region: 'eu', date: '2026-12-01' },
      retryOfPipelineRunId: null,
      workflowId: `pipeline-run-${res.body.id}`,
    });
    expect(['queued', 'running']).toContain(res.body.status);
    expect(res.body.temporalUiUrl).toContain(encodeURIComponent(res.body.workflowId));
  });

  test('Idempotency-Key: same key and body, the same run; other body, 422; a running run cannot be retried', async () => {
    const p = await ok('POST', '/v1/pipelines', linear());
    const idem = { 'idempotency-key': `k-${randomUUID()}` };
    const first = await send('POST', `/v1/pipelines/${p.id}/runs`, { params: { region: 'eu' } }, idem);
    const again = await send('POST', `/v1/pipelines/${p.id}/runs`, { params: { region: 'eu' } }, idem);
    expect([first.status, again.status]).toEqual([202, 202]);
    expect(again.body.id).toBe(first.body.id);
    expect([first.headers.get('idempotent-replayed'), again.headers.get('idempotent-replayed')]).toEqual([null, 'true']);
    const before = await counts();
    const other = await send('POST', `/v1/pipelines/${p.id}/runs`, { params: { region: 'us' } }, idem);
    expect(other.status).toBe(422);
    expect(other.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    const badKey = await send('POST', `/v1/pipelines/${p.id}/runs`, {}, { 'idempotency-key': 'with space' });
    expect(badKey.status).toBe(400);
    expect(await counts()).toEqual(before);
    const run = await ok('GET', `/v1/pipeline-runs/${first.body.id}`);
    if (run.status === 'queued' || run.status === 'running') {
      const retry = await send('POST', `/v1/pipeline-runs/${run.id}/retry`);
      expect([retry.status, retry.body.error.code]).toEqual([409, 'PIPELINE_RUN_NOT_FINISHED']);
    }
  });

  test('a run shows its steps; list filters and pages; cancel ends it and every step', async () => {
    const p = await ok('POST', '/v1/pipelines', {
      name: unique('shape'),
      steps: [
        { key: 'one', task: sleepTask.id },
        { key: 'many', task: shellTask.id, dependsOn: ['one'], forEach: [1, 2], overrides: { args: ['{{ item }}'] } },
      ],
    });
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(await ok('POST', `/v1/pipelines/${p.id}/runs`, {}));
    const got = await ok('GET', `/v1/pipeline-runs/${runs[0].id}`);
    expect(got.steps).toEqual([
      expect.objectContaining({ key: 'one', taskId: sleepTask.id, triggerRule: 'all_success', dependsOn: [], items: null }),
      expect.objectContaining({ key: 'many', taskId: shellTask.id, dependsOn: ['one'], runId: null, items: expect.any(Array) }),
    ]);
    const page1 = await ok('GET', `/v1/pipeline-runs?pipelineId=${p.id}&limit=2`);
    expect(page1.items.map((r: any) => r.id)).toEqual([runs[2].id, runs[1].id]);
    expect(page1.items[0].steps).toBeUndefined();
    const page2 = await ok('GET', `/v1/pipeline-runs?pipelineId=${p.id}&limit=2&cursor=${page1.nextCursor}`);
    expect(page2).toEqual({ items: [expect.objectContaining({ id: runs[0].id })], nextCursor: null });
    expect((await ok('GET', `/v1/pipeline-runs?pipelineId=${p.id}&trigger=retry`)).items).toEqual([]);
    expect((await ok('GET', `/v1/pipeline-runs?pipelineId=${p.id}&status=succeeded`)).items).toEqual([]);
    await runningStep(runs[0].id, 'one');
    const cancelled = await send('POST', `/v1/pipeline-runs/${runs[0].id}/cancel`);
    // The workflow ends the run; the request only asked it to (an error here would mean the record was ended instead).
    expect([cancelled.status, cancelled.body.id, cancelled.body.error]).toEqual([202, runs[0].id, null]);
    const ended = await pipelines.waitForPipelineRun(runs[0].id, undefined, 60_000);
    expect(ended.status).toBe('cancelled');
    expect(stepStates(ended)).toEqual({ one: ['cancelled', 'pipeline_cancelled'], many: ['cancelled', 'pipeline_cancelled'] });
    expect(ended.steps.map((s: any) => s.finishedAt)).toEqual([expect.any(String), expect.any(String)]);
    const twice = await send('POST', `/v1/pipeline-runs/${runs[0].id}/cancel`);
    expect([twice.status, twice.body.error.code]).toEqual([409, 'PIPELINE_RUN_ALREADY_FINISHED']);
    for (const r of runs.slice(1)) expect((await send('POST', `/v1/pipeline-runs/${r.id}/cancel`)).status).toBe(202);
    for (const r of runs.slice(1)) expect((await pipelines.waitForPipelineRun(r.id, undefined, 60_000)).status).toBe('cancelled');
  });

  test('the workflow carries the run in its search attributes; a run whose workflow is gone is ended by cancel, steps too', async () => {
    const p = await ok('POST', '/v1/pipelines', {
      name: unique('gone'),
      steps: [
        { key: 'a', task: sleepTask.id },
        { key: 'b', task: shellTask.id, dependsOn: ['a'] },
      ],
    });
    const run = await ok('POST', `/v1/pipelines/${p.id}/runs`, {});
    await runningStep(run.id, 'a');
    const connection = await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS });
    try {
      const handle = new Client({ connection, namespace: stack.config.TEMPORAL_NAMESPACE }).workflow.getHandle(run.workflowId);
      const sa = (await handle.describe()).searchAttributes as Record<string, unknown[]>;
      expect(sa).toMatchObject({ TenantId: [tenantId], PipelineRunId: [run.id], Trigger: ['manual'] });
      // Terminating closes the workflow without letting it record anything: the run and step `a` stay running.
      await handle.terminate('gone for the test');
    } finally {
      await connection.close();
    }
    expect(stepStates(await pipelines.getPipelineRun(run.id))).toEqual({ a: ['running', null], b: ['pending', null] });
    const cancelled = await send('POST', `/v1/pipeline-runs/${run.id}/cancel`);
    expect(cancelled.status).toBe(202);
    expect(cancelled.body).toMatchObject({
      status: 'cancelled',
      error: 'cancelled; its workflow is terminated',
      finishedAt: expect.any(String),
    });
    const ended = await pipelines.getPipelineRun(run.id);
    expect(stepStates(ended)).toEqual({ a: ['cancelled', 'pipeline_cancelled'], b: ['cancelled', 'pipeline_cancelled'] });
    expect(ended.steps.map((s: any) => s.finishedAt)).toEqual([expect.any(String), expect.any(String)]);
    const audits = await stack.db.query(`SELECT details FROM audit_events WHERE action = 'pipeline_run.cancel' AND target_id = $1`, [
      run.id,
    ]);
    expect(audits).toEqual([{ details: expect.objectContaining({ gone: 'its workflow is terminated' }) }]);
    const twice = await send('POST', `/v1/pipeline-runs/${run.id}/cancel`);
    expect([twice.status, twice.body.error.code]).toEqual([409, 'PIPELINE_RUN_ALREADY_FINISHED']);
  });
});

describe('delete', () => {
  test('a pipeline a schedule starts is PIPELINE_IN_USE; cascade deletes the schedule too; its runs stay readable', async () => {
    const p = await ok('POST', '/v1/pipelines', { name: unique('used'), steps: [{ key: 'a', task: scriptTask.id }] });
    const run = await ok('POST', `/v1/pipelines/${p.id}/runs`, {});
    const schedule = await send('POST', '/v1/schedules', {
      name: unique('s'),
      pipelineId: p.id,
      spec: { cron: ['0 0 1 1 *'] },
      paused: true,
    });
    expect(schedule.status).toBe(201);
    const stale = await send('DELETE', `/v1/pipelines/${p.id}`, undefined, { 'if-match': '"9"' });
    expect(stale.status).toBe(412);
    const refused = await send('DELETE', `/v1/pipelines/${p.id}`);
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({
      code: 'PIPELINE_IN_USE',
      details: [expect.objectContaining({ scheduleId: schedule.body.id })],
    });
    expect((await send('GET', `/v1/pipelines/${p.id}`)).status).toBe(200);
    const deleted = await send('DELETE', `/v1/pipelines/${p.id}?cascade=true`);
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({ id: p.id, deletedSchedules: [{ id: schedule.body.id, name: schedule.body.name }] });
    expect((await send('GET', `/v1/pipelines/${p.id}`)).body.error.code).toBe('PIPELINE_NOT_FOUND');
    expect((await send('GET', `/v1/schedules/${schedule.body.id}`)).status).toBe(404);
    expect((await send('GET', `/v1/pipeline-runs/${run.id}`)).status).toBe(200);
    const reuse = await send('POST', '/v1/pipelines', { name: p.name, steps: [{ key: 'a', task: scriptTask.id }] });
    expect(reuse.status).toBe(201);
  });
});
