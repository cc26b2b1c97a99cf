/* PipelineRecorder against the real PostgreSQL of the test run (no Temporal): opening runs (manual, a schedule's
 * fire and its duplicate, a deleted pipeline, a retry taking over succeeded steps), preparing steps (when, forEach,
 * templates over stored outputs, the task's state), the item inputs the workflow starts children with, settling
 * steps with their outputs, and closing a run once with its failure/recovery alert. The step runs themselves are
 * recorded through RunRecorder, as the child workflows do. */
import { randomBytes, randomUUID } from 'node:crypto';
import { PipelineRecorder, RunRecorder, stepRunId } from '@task-scheduler/activities';
import type { OpenPipelineRun } from '@task-scheduler/activities';
import { DEFAULT_RETRY, PIPELINE_LIMITS, stepRunWorkflowId } from '@task-scheduler/contracts';
import type { PipelineDefinition, PipelineStep, RunOutputs, StepItemStart } from '@task-scheduler/contracts';
import { SHELL_DEFAULT_LIMITS, SHELL_MAX_LIMITS } from '@task-scheduler/core';
import type { RunInputConfig } from '@task-scheduler/core';
import { WORKER_ROLE_GRANTS, createDataSource, ensureAppRole } from '@task-scheduler/db';
import type { DataSource } from 'typeorm';
import { openTestDataSource } from '../support/test-database';

const config: RunInputConfig = {
  TASK_QUEUE_PREFIX: 'pipeline-recorder-test',
  HEARTBEAT_TIMEOUT_SECONDS: 15,
  SHELL_MAX_LIMITS,
  SHELL_DEFAULT_LIMITS,
};
const SEALED = 'v1.aXY.dGFn.Y2lwaGVydGV4dA';

let ds: DataSource;
let pipelines: PipelineRecorder;
let runs: RunRecorder;
let tenantId: string;

beforeAll(async () => {
  ds = await openTestDataSource('pipeline-recorder');
  pipelines = new PipelineRecorder(ds, config);
  runs = new RunRecorder(ds);
  tenantId = await createTenant();
});
afterAll(async () => ds?.destroy());

async function createTenant(alerts: object | null = null): Promise<string> {
  const [{ id }] = await ds.query(`INSERT INTO tenants (slug, name, alert_settings) VALUES ($1, 'p', $2) RETURNING id`, [
    `pipelines-${randomBytes(4).toString('hex')}`,
    alerts && JSON.stringify(alerts),
  ]);
  return id;
}

async function createTask(
  t: { executor?: 'shell' | 'http'; spec?: object; enabled?: boolean; secrets?: string | null } = {},
): Promise<string> {
  const executor = t.executor ?? 'shell';
  const spec = t.spec ?? (executor === 'shell' ? { script: 'echo hi' } : { method: 'POST', url: 'https://api.example.com/{id}' });
  const [{ id }] = await ds.query(
    `INSERT INTO tasks (tenant_id, name, executor, spec, timeout_seconds, retry_policy, secrets, secret_names, enabled)
     VALUES ($1, $2, $3, $4, 60, $5, $6, '{}', $7) RETURNING id`,
    [
      tenantId,
      `task-${randomBytes(4).toString('hex')}`,
      executor,
      JSON.stringify(spec),
      JSON.stringify(DEFAULT_RETRY),
      t.secrets ?? null,
      t.enabled ?? true,
    ],
  );
  return id;
}

type StepInput = Partial<PipelineStep> & { key: string; taskId: string };

function definition(steps: StepInput[], extra: Partial<PipelineDefinition> = {}): PipelineDefinition {
  return {
    parameters: [],
    maxParallelism: 10,
    failurePolicy: 'fail_fast',
    ...extra,
    steps: steps.map((s) => ({ dependsOn: [], triggerRule: 'all_success', ...s })),
  };
}

/** A pipeline at version 1, written as the API writes it (row and version). */
async function createPipeline(def: PipelineDefinition, alerts: object | null = null): Promise<string> {
  const name = `pipeline-${randomBytes(4).toString('hex')}`;
  const [{ id }] = await ds.query(
    `INSERT INTO pipelines (tenant_id, name, version, definition, alerts) VALUES ($1, $2, 1, $3, $4) RETURNING id`,
    [tenantId, name, JSON.stringify(def), alerts && JSON.stringify(alerts)],
  );
  await ds.query(
    `INSERT INTO pipeline_versions (pipeline_id, tenant_id, version, action, name, definition) VALUES ($1, $2, 1, 'create', $3, $4)`,
    [id, tenantId, name, JSON.stringify(def)],
  );
  return id;
}

/** A run the API recorded `queued` (manual, or a retry of another). */
async function queueRun(pipelineId: string, opts: { params?: object; retryOf?: string } = {}): Promise<string> {
  const id = randomUUID();
  await ds.query(
    `INSERT INTO pipeline_runs (id, tenant_id, pipeline_id, pipeline_version, trigger, status, params, retry_of_pipeline_run_id, workflow_id)
     VALUES ($1, $2, $3, 1, $4, 'queued', $5, $6, $7)`,
    [
      id,
      tenantId,
      pipelineId,
      opts.retryOf ? 'retry' : 'manual',
      JSON.stringify(opts.params ?? {}),
      opts.retryOf ?? null,
      `pipeline-run-${id}`,
    ],
  );
  return id;
}

function openArgs(pipelineRunId: string, pipelineId: string, over: Partial<OpenPipelineRun> = {}): OpenPipelineRun {
  return {
    pipelineRunId,
    drawn: false,
    tenantId,
    pipelineId,
    scheduleId: null,
    scheduledAt: null,
    params: null,
    trigger: 'manual',
    workflowId: `pipeline-run-${pipelineRunId}`,
    temporalRunId: 'temporal-1',
    ...over,
  };
}

async function openedRun(pipelineId: string, opts: { params?: object; retryOf?: string } = {}): Promise<string> {
  const id = await queueRun(pipelineId, opts);
  const opened = await pipelines.openRun(openArgs(id, pipelineId, { trigger: opts.retryOf ? 'retry' : 'manual' }));
  expect(opened.kind).toBe('open');
  return id;
}

/** Runs an item as its child workflow records it: the run row from its input, then its final state with outputs. */
async function runItem(start: StepItemStart, status: 'succeeded' | 'failed', outputs: RunOutputs | null): Promise<void> {
  expect(await runs.ensureRun(start.input, start.workflowId, `temporal-${start.input.runId}`)).toEqual({ duplicateOf: null });
  await runs.finalizeRun({
    runId: start.input.runId,
    status,
    attempts: 1,
    exitCode: status === 'succeeded' ? 0 : 1,
    error: null,
    stdout: null,
    stderr: null,
    outputs,
  });
}

async function stepRow(pipelineRunId: string, key: string): Promise<Record<string, unknown>> {
  const [row] = await ds.query(`SELECT * FROM pipeline_run_steps WHERE pipeline_run_id = $1 AND step_key = $2`, [pipelineRunId, key]);
  return row;
}

/** Prepares, starts and records a single-run step that succeeds with `outputs`, then settles it. */
async function succeedStep(pipelineRunId: string, key: string, outputs: RunOutputs): Promise<void> {
  expect(await pipelines.prepareStep({ pipelineRunId, stepKey: key, upstream: {} })).toEqual({
    action: 'run',
    itemCount: 1,
    fanOut: false,
  });
  const [start] = await pipelines.stepItems({ pipelineRunId, stepKey: key, from: 0, count: 1 });
  await runItem(start, 'succeeded', outputs);
  await pipelines.settleStep({ pipelineRunId, stepKey: key, outcome: 'succeeded', reason: 'ran', error: null });
}

describe('openRun', () => {
  test('a manual run: running, every step pending, the plan in definition order; a retried call converges', async () => {
    const task = await createTask();
    const def = definition(
      [
        { key: 'b', taskId: task },
        { key: 'a', taskId: task, dependsOn: ['b'], triggerRule: 'all_done' },
      ],
      {
        maxParallelism: 3,
        failurePolicy: 'continue',
      },
    );
    const pipelineId = await createPipeline(def);
    const id = await queueRun(pipelineId);
    const first = await pipelines.openRun(openArgs(id, pipelineId));
    expect(first).toEqual({
      kind: 'open',
      plan: {
        pipelineRunId: id,
        pipelineVersion: 1,
        steps: [
          { key: 'b', dependsOn: [], triggerRule: 'all_success' },
          { key: 'a', dependsOn: ['b'], triggerRule: 'all_done' },
        ],
        maxParallelism: 3,
        failurePolicy: 'continue',
        reused: [],
      },
    });
    expect(await pipelines.openRun(openArgs(id, pipelineId, { temporalRunId: 'temporal-2' }))).toEqual(first);
    const [run] = await ds.query(`SELECT status, temporal_run_id, started_at FROM pipeline_runs WHERE id = $1`, [id]);
    expect(run).toMatchObject({ status: 'running', temporal_run_id: 'temporal-2', started_at: expect.any(Date) });
    const steps = await ds.query(`SELECT step_key, status, task_id FROM pipeline_run_steps WHERE pipeline_run_id = $1 ORDER BY step_key`, [
      id,
    ]);
    expect(steps).toEqual([
      { step_key: 'a', status: 'pending', task_id: task },
      { step_key: 'b', status: 'pending', task_id: task },
    ]);
  });

  test('a schedule fire is recorded with defaults; another workflow of the same fire is a duplicate', async () => {
    const task = await createTask();
    const pipelineId = await createPipeline(
      definition([{ key: 'a', taskId: task }], { parameters: [{ name: 'region', default: 'eu' }, { name: 'day' }] }),
    );
    const [{ id: scheduleId }] = await ds.query(
      `INSERT INTO schedules (tenant_id, pipeline_id, params, name, spec, policies, temporal_schedule_id)
       VALUES ($1, $2, '{"day":"mon"}', $3, '{}', '{}', $3) RETURNING id`,
      [tenantId, pipelineId, `schedule-${randomBytes(4).toString('hex')}`],
    );
    const scheduledAt = '2026-12-01T10:00:00.000Z';
    const fire = (id: string) =>
      openArgs(id, pipelineId, { drawn: true, trigger: 'schedule', scheduleId, scheduledAt, params: { day: 'mon' } });
    const first = randomUUID();
    expect((await pipelines.openRun(fire(first))).kind).toBe('open');
    expect((await pipelines.openRun(fire(first))).kind).toBe('open'); // a retried activity
    const second = randomUUID();
    expect(await pipelines.openRun(fire(second))).toEqual({ kind: 'duplicate', pipelineRunId: second, duplicateOf: first });
    const rows = await ds.query(`SELECT id, trigger, status, params, scheduled_at FROM pipeline_runs WHERE schedule_id = $1`, [scheduleId]);
    expect(rows).toEqual([
      { id: first, trigger: 'schedule', status: 'running', params: { day: 'mon', region: 'eu' }, scheduled_at: new Date(scheduledAt) },
    ]);

    // A fire missing a required parameter (the pipeline gained one since) is recorded refused.
    const third = randomUUID();
    const refused = await pipelines.openRun({ ...fire(third), scheduledAt: '2026-12-02T10:00:00.000Z', params: {} });
    expect(refused).toEqual({
      kind: 'refused',
      pipelineRunId: third,
      reason: 'params_invalid: day is required; nothing ran',
    });
  });

  test('a manual or retry run whose API commit failed is recorded as its input asks: version, params, retried run', async () => {
    const task = await createTask();
    const pipelineId = await createPipeline(definition([{ key: 'a', taskId: task }], { parameters: [{ name: 'p', default: 'd' }] }));
    const retried = await openedRun(pipelineId, { params: { p: 'x' } });
    // Version 2 now exists; the start asked for version 1 (as the API recorded it, defaults applied).
    await ds.query(`UPDATE pipelines SET version = 2 WHERE id = $1`, [pipelineId]);
    const id = randomUUID();
    const opened = await pipelines.openRun(
      openArgs(id, pipelineId, { trigger: 'retry', params: { p: 'x' }, pipelineVersion: 1, retryOfPipelineRunId: retried }),
    );
    expect(opened).toMatchObject({ kind: 'open', plan: { pipelineVersion: 1 } });
    const [row] = await ds.query(`SELECT * FROM pipeline_runs WHERE id = $1`, [id]);
    expect(row).toMatchObject({
      pipeline_version: 1,
      params: { p: 'x' },
      retry_of_pipeline_run_id: retried,
      trigger: 'retry',
      status: 'running',
    });
  });

  test('a fire of a deleted pipeline is refused and recorded cancelled; so is a queued run whose pipeline went', async () => {
    const pipelineId = await createPipeline(definition([{ key: 'a', taskId: await createTask() }]));
    const queued = await queueRun(pipelineId);
    await ds.query(`UPDATE pipelines SET deleted_at = now() WHERE id = $1`, [pipelineId]);
    const id = randomUUID();
    const opened = await pipelines.openRun(openArgs(id, pipelineId, { drawn: true, trigger: 'schedule' }));
    expect(opened).toEqual({ kind: 'refused', pipelineRunId: id, reason: expect.stringMatching(/^pipeline_deleted: /) });
    expect(await pipelines.openRun(openArgs(id, pipelineId, { drawn: true, trigger: 'schedule' }))).toEqual(opened);
    expect((await pipelines.openRun(openArgs(queued, pipelineId))).kind).toBe('refused');
    const rows = await ds.query(`SELECT status, error, finished_at FROM pipeline_runs WHERE id = ANY($1)`, [[id, queued]]);
    expect(rows).toEqual([
      { status: 'cancelled', error: expect.stringMatching(/^pipeline_deleted: /), finished_at: expect.any(Date) },
      { status: 'cancelled', error: expect.stringMatching(/^pipeline_deleted: /), finished_at: expect.any(Date) },
    ]);
    expect(await ds.query(`SELECT 1 FROM pipeline_run_steps WHERE pipeline_run_id = ANY($1)`, [[id, queued]])).toEqual([]);
  });

  test('a retry takes over the succeeded steps nothing re-run feeds, with their outputs', async () => {
    const task = await createTask();
    const pipelineId = await createPipeline(
      definition([
        { key: 'a', taskId: task },
        { key: 'b', taskId: task, dependsOn: ['a'] },
        { key: 'c', taskId: task },
        { key: 'd', taskId: task, dependsOn: ['b', 'c'] },
      ]),
    );
    const first = await openedRun(pipelineId);
    await succeedStep(first, 'a', { n: 1 });
    await pipelines.settleStep({ pipelineRunId: first, stepKey: 'b', outcome: 'failed', reason: 'ran', error: 'exit 1' });
    await succeedStep(first, 'c', { n: 3 });
    await pipelines.settleStep({ pipelineRunId: first, stepKey: 'd', outcome: 'skipped', reason: 'trigger_rule', error: null });
    await pipelines.closeRun({ pipelineRunId: first, status: 'failed', error: 'step b failed' });

    const retry = await queueRun(pipelineId, { retryOf: first });
    const opened = await pipelines.openRun(openArgs(retry, pipelineId, { trigger: 'retry' }));
    expect(opened.kind === 'open' && opened.plan.reused).toEqual(['a', 'c']);
    const steps = await ds.query(
      `SELECT step_key, status, reason, outputs, reused_from_pipeline_run_id FROM pipeline_run_steps WHERE pipeline_run_id = $1 ORDER BY step_key`,
      [retry],
    );
    expect(steps).toEqual([
      { step_key: 'a', status: 'succeeded', reason: 'reused', outputs: { n: 1 }, reused_from_pipeline_run_id: first },
      { step_key: 'b', status: 'pending', reason: null, outputs: null, reused_from_pipeline_run_id: null },
      { step_key: 'c', status: 'succeeded', reason: 'reused', outputs: { n: 3 }, reused_from_pipeline_run_id: first },
      { step_key: 'd', status: 'pending', reason: null, outputs: null, reused_from_pipeline_run_id: null },
    ]);
    // b's templates see a's outputs, carried over.
    expect(await pipelines.prepareStep({ pipelineRunId: retry, stepKey: 'b', upstream: { a: 'succeeded' } })).toMatchObject({
      action: 'run',
    });
  });
});

describe('prepareStep', () => {
  test('when false skips; an empty list skips; a list too long, not a list or a missing output fails, readably', async () => {
    const task = await createTask();
    const many = Array.from({ length: PIPELINE_LIMITS.maxItemsPerStep + 1 }, (_, i) => i);
    const pipelineId = await createPipeline(
      definition(
        [
          { key: 'extract', taskId: task },
          { key: 'gated', taskId: task, dependsOn: ['extract'], when: 'steps.extract.outputs.count > 3' },
          { key: 'none', taskId: task, dependsOn: ['extract'], forEach: '{{ steps.extract.outputs.rows_list }}' },
          { key: 'empty', taskId: task, forEach: [] },
          { key: 'toomany', taskId: task, forEach: many },
          { key: 'notlist', taskId: task, forEach: '{{ params.region }}' },
          { key: 'missing', taskId: task, dependsOn: ['extract'], overrides: { env: { ROWS: '{{ steps.extract.outputs.rows }}' } } },
        ],
        { parameters: [{ name: 'region', default: 'eu' }] },
      ),
    );
    const id = await openedRun(pipelineId, { params: { region: 'eu' } });
    await succeedStep(id, 'extract', { count: 2, path: '/tmp/x', rows_list: [] });
    const prepare = (stepKey: string) => pipelines.prepareStep({ pipelineRunId: id, stepKey, upstream: { extract: 'succeeded' } });

    expect(await prepare('gated')).toEqual({ action: 'skip', reason: 'condition_false', detail: expect.stringContaining('is false') });
    expect(await prepare('none')).toEqual({ action: 'skip', reason: 'empty_list', detail: 'forEach gave no items' });
    expect(await prepare('empty')).toEqual({ action: 'skip', reason: 'empty_list', detail: 'forEach gave no items' });
    expect(await prepare('toomany')).toEqual({
      action: 'fail',
      error: `forEach: the list has ${many.length} items; a step runs at most ${PIPELINE_LIMITS.maxItemsPerStep}`,
    });
    expect(await prepare('notlist')).toEqual({ action: 'fail', error: 'forEach: "{{ params.region }}" gave the string "eu", not a list' });
    const missing = await prepare('missing');
    // jsonb keeps keys shortest first, so that is the order the message lists them in.
    expect(missing).toEqual({ action: 'fail', error: expect.stringContaining('overrides.env.ROWS') });
    expect(missing.action === 'fail' && missing.error).toContain('step extract has no output "rows" (it has: path, count, rows_list)');
    // Nothing of a step that does not run is written by preparing it: settleStep records why.
    for (const key of ['gated', 'none', 'toomany', 'missing'])
      expect(await stepRow(id, key)).toMatchObject({ status: 'pending', started_at: null });
  });

  test('renders templates from outputs, params and items; a disabled, deleted or unsuitable task fails the step', async () => {
    const shell = await createTask();
    const http = await createTask({ executor: 'http' });
    const off = await createTask({ enabled: false });
    const gone = await createTask();
    await ds.query(`UPDATE tasks SET deleted_at = now() WHERE id = $1`, [gone]);
    const pipelineId = await createPipeline(
      definition(
        [
          { key: 'extract', taskId: shell },
          {
            key: 'load',
            taskId: http,
            dependsOn: ['extract'],
            forEach: '{{ steps.extract.outputs.ids }}',
            overrides: {
              variables: { id: '{{ item }}' },
              headers: { 'X-Run': 'item {{ itemIndex }} of {{ size(steps.extract.outputs.ids) }}' },
              body: {
                ids: '{{ steps.extract.outputs.ids }}',
                region: '{{ params.region }}',
                count: '{{ steps.extract.outputs.count + 1 }}',
              },
            },
          },
          { key: 'off', taskId: off },
          { key: 'gone', taskId: gone },
          { key: 'wrong', taskId: shell, overrides: { headers: { A: 'b' } } },
        ],
        { parameters: [{ name: 'region', default: 'eu' }] },
      ),
    );
    const id = await openedRun(pipelineId, { params: { region: 'us' } });
    await succeedStep(id, 'extract', { ids: ['x', 'y'], count: 5 });
    expect(await pipelines.prepareStep({ pipelineRunId: id, stepKey: 'load', upstream: { extract: 'succeeded' } })).toEqual({
      action: 'run',
      itemCount: 2,
      fanOut: true,
    });
    expect(await stepRow(id, 'load')).toMatchObject({ status: 'running', item_count: 2, items: ['x', 'y'], started_at: expect.any(Date) });
    // Prepared once: a retried call answers the same without evaluating again.
    expect(await pipelines.prepareStep({ pipelineRunId: id, stepKey: 'load', upstream: { extract: 'succeeded' } })).toEqual({
      action: 'run',
      itemCount: 2,
      fanOut: true,
    });
    const starts = await pipelines.stepItems({ pipelineRunId: id, stepKey: 'load', from: 0, count: 10 });
    expect(starts.map((s) => s.input.http)).toEqual([
      expect.objectContaining({
        variables: { id: 'x' },
        headers: { 'X-Run': 'item 0 of 2' },
        body: { ids: ['x', 'y'], region: 'us', count: 6 },
      }),
      expect.objectContaining({ variables: { id: 'y' }, headers: { 'X-Run': 'item 1 of 2' } }),
    ]);

    const prepare = (stepKey: string) => pipelines.prepareStep({ pipelineRunId: id, stepKey, upstream: {} });
    expect(await prepare('off')).toEqual({ action: 'fail', error: expect.stringMatching(/^task task-\w+ is disabled$/) });
    expect(await prepare('gone')).toEqual({ action: 'fail', error: expect.stringMatching(/^task task-\w+ was deleted$/) });
    expect(await prepare('wrong')).toEqual({ action: 'fail', error: 'headers cannot override a shell task (it takes env, args)' });
  });
});

test('a step that would take the pipeline run past its run budget fails; steps that did not run do not count', async () => {
  const task = await createTask();
  const pipelineId = await createPipeline(
    definition([
      { key: 'big', taskId: task },
      { key: 'skipped', taskId: task },
      { key: 'two', taskId: task, dependsOn: ['big'], forEach: [1, 2] },
      { key: 'one', taskId: task, dependsOn: ['big'] },
    ]),
  );
  const id = await openedRun(pipelineId);
  // As if 'big' had been a fan-out that ran all but one of the budget, and 'skipped' a huge one that did not run.
  const budget = PIPELINE_LIMITS.maxRunsPerPipelineRun;
  await ds.query(
    `UPDATE pipeline_run_steps SET status = 'succeeded', reason = 'ran', item_count = $2 WHERE pipeline_run_id = $1 AND step_key = 'big'`,
    [id, budget - 1],
  );
  await ds.query(
    `UPDATE pipeline_run_steps SET status = 'skipped', reason = 'trigger_rule', item_count = $2 WHERE pipeline_run_id = $1 AND step_key = 'skipped'`,
    [id, budget],
  );
  const prepare = (stepKey: string) => pipelines.prepareStep({ pipelineRunId: id, stepKey, upstream: { big: 'succeeded' } });
  expect(await prepare('two')).toEqual({
    action: 'fail',
    error: `this step would start 2 runs after ${budget - 1} already started; a pipeline run starts at most ${budget}`,
  });
  expect(await prepare('one')).toEqual({ action: 'run', itemCount: 1, fanOut: false });
});

describe('inputs a run could not use fail the step, readably, and never as a retried activity', () => {
  test('a NUL from CEL, a line break in a header, an item input over its cap', async () => {
    const shell = await createTask();
    const http = await createTask({ executor: 'http' });
    const big = 'x'.repeat(PIPELINE_LIMITS.maxItemInputBytes);
    const pipelineId = await createPipeline(
      definition(
        [
          { key: 'nul', taskId: shell, forEach: '{{ ["a\\u0000b"] }}' },
          { key: 'nulbytes', taskId: shell, overrides: { env: { V: '{{ string(b"\\x00") }}' } } },
          { key: 'header', taskId: http, overrides: { headers: { 'X-A': '{{ "a\\r\\nX-Evil: 1" }}' } } },
          { key: 'huge', taskId: shell, forEach: [1, 2], overrides: { env: { V: '{{ params.big }}' } } },
        ],
        { parameters: [{ name: 'big' }] },
      ),
    );
    // (jsonb holds no NUL, so CEL is the only source of one; the env and args checks guard the same.)
    const id = await openedRun(pipelineId, { params: { big } });
    const prepare = (stepKey: string) => pipelines.prepareStep({ pipelineRunId: id, stepKey, upstream: {} });
    expect(await prepare('nul')).toEqual({
      action: 'fail',
      error: 'forEach: "["a\\u0000b"]": gives text with a NUL character, which cannot be stored',
    });
    expect(await prepare('nulbytes')).toEqual({ action: 'fail', error: expect.stringContaining('gives text with a NUL character') });
    expect(await prepare('header')).toEqual({
      action: 'fail',
      error: 'overrides.headers.X-A: the rendered value has a line break, which a header cannot hold',
    });
    expect(await prepare('huge')).toEqual({
      action: 'fail',
      error: expect.stringMatching(
        new RegExp(
          `^step huge, item 0: the task-run input is \\d+ bytes as JSON; an item's input is at most ${PIPELINE_LIMITS.maxItemInputBytes}`,
        ),
      ),
    });
    for (const key of ['nul', 'nulbytes', 'header', 'huge']) expect(await stepRow(id, key)).toMatchObject({ status: 'pending' });
  });

  test('a step whose templates take more than 2 s fails within about 2 s, with the item count', async () => {
    const task = await createTask();
    const items = Array.from({ length: PIPELINE_LIMITS.maxItemsPerStep }, (_, i) => i);
    // About 35 ms per item here (5000 values through 10 chained maps): 1000 items would take half a minute.
    const heavy = `{{ size(params.l${'.map(x, x + 1)'.repeat(10)}) }}`;
    const pipelineId = await createPipeline(
      definition([{ key: 'heavy', taskId: task, forEach: items, overrides: { env: { N: heavy } } }], { parameters: [{ name: 'l' }] }),
    );
    const id = await openedRun(pipelineId, { params: { l: Array.from({ length: 5000 }, (_, i) => i) } });
    const began = Date.now();
    const prepared = await pipelines.prepareStep({ pipelineRunId: id, stepKey: 'heavy', upstream: {} });
    const took = Date.now() - began;
    expect(prepared).toEqual({
      action: 'fail',
      error: expect.stringMatching(/^the step's templates took more than 2 s to evaluate for \d+ items; simplify them$/),
    });
    expect(took).toBeLessThan(6000);
  }, 20_000);

  test('a batch of item inputs stops short of 1 MiB; the rest come with the next call', async () => {
    const task = await createTask();
    const items = Array.from({ length: PIPELINE_LIMITS.itemsPerBatch }, (_, i) => i);
    const pipelineId = await createPipeline(
      definition([{ key: 'wide', taskId: task, forEach: items, overrides: { env: { V: '{{ params.s }}' } } }], {
        parameters: [{ name: 's' }],
      }),
    );
    // 30,000 characters per item: 50 of them are about 1.5 MB.
    const id = await openedRun(pipelineId, { params: { s: 'y'.repeat(30_000) } });
    expect(await pipelines.prepareStep({ pipelineRunId: id, stepKey: 'wide', upstream: {} })).toMatchObject({ action: 'run' });
    const first = await pipelines.stepItems({ pipelineRunId: id, stepKey: 'wide', from: 0, count: 50 });
    expect(first.length).toBeGreaterThan(1);
    expect(first.length).toBeLessThan(50);
    expect(Buffer.byteLength(JSON.stringify(first))).toBeLessThanOrEqual(1024 * 1024 + 1024);
    const rest = await pipelines.stepItems({ pipelineRunId: id, stepKey: 'wide', from: first.length, count: 50 });
    expect(rest[0].itemIndex).toBe(first.length);
  });
});

describe('stepItems', () => {
  test('inputs of a shell fan-out: deterministic run ids, ITEM_INDEX and ITEM, sealed secrets, trigger pipeline, paged', async () => {
    const task = await createTask({ secrets: SEALED, spec: { command: 'process', args: ['--all'], env: { MODE: 'batch' } } });
    const items = ['plain', { k: 1 }, 3];
    const pipelineId = await createPipeline(
      definition([{ key: 'each', taskId: task, forEach: items, overrides: { args: ['--item', '{{ item }}', '--at', '{{ itemIndex }}'] } }]),
    );
    const id = await openedRun(pipelineId);
    expect(await pipelines.prepareStep({ pipelineRunId: id, stepKey: 'each', upstream: {} })).toEqual({
      action: 'run',
      itemCount: 3,
      fanOut: true,
    });
    const starts = await pipelines.stepItems({ pipelineRunId: id, stepKey: 'each', from: 0, count: 50 });
    expect(starts.map((s) => [s.itemIndex, s.workflowId, s.input.runId])).toEqual(
      [0, 1, 2].map((i) => [i, stepRunWorkflowId(id, 'each', i), stepRunId(id, 'each', i)]),
    );
    expect(new Set(starts.map((s) => s.input.runId)).size).toBe(3);
    for (const s of starts) expect(s.input.runId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(starts.map((s) => s.input.shell?.env)).toEqual([
      { MODE: 'batch', ITEM_INDEX: '0', ITEM: 'plain' },
      { MODE: 'batch', ITEM_INDEX: '1', ITEM: '{"k":1}' },
      { MODE: 'batch', ITEM_INDEX: '2', ITEM: '3' },
    ]);
    expect(starts.map((s) => s.input.shell?.args)).toEqual([
      ['--item', 'plain', '--at', '0'],
      ['--item', '{"k":1}', '--at', '1'],
      ['--item', '3', '--at', '2'],
    ]);
    expect(starts[1].input).toMatchObject({
      tenantId,
      taskId: task,
      taskVersion: 1,
      trigger: 'pipeline',
      executor: 'shell',
      secrets: SEALED,
      shellTaskQueue: 'pipeline-recorder-test.shell',
      pipeline: { pipelineRunId: id, stepKey: 'each', itemIndex: 1 },
    });
    expect(starts[1].input.shell?.limits).toEqual(SHELL_DEFAULT_LIMITS);

    // The same items again (a retried activity, a workflow continued as new), and a page of them.
    expect(await pipelines.stepItems({ pipelineRunId: id, stepKey: 'each', from: 0, count: 50 })).toEqual(starts);
    expect(await pipelines.stepItems({ pipelineRunId: id, stepKey: 'each', from: 1, count: 1 })).toEqual([starts[1]]);
    expect(await pipelines.stepItems({ pipelineRunId: id, stepKey: 'each', from: 3, count: 5 })).toEqual([]);
  });

  test('a single-run step has one input without item; a step not prepared is refused', async () => {
    const task = await createTask();
    const pipelineId = await createPipeline(
      definition([
        { key: 'one', taskId: task },
        { key: 'two', taskId: task },
      ]),
    );
    const id = await openedRun(pipelineId);
    await pipelines.prepareStep({ pipelineRunId: id, stepKey: 'one', upstream: {} });
    const [start, ...rest] = await pipelines.stepItems({ pipelineRunId: id, stepKey: 'one', from: 0, count: 50 });
    expect(rest).toEqual([]);
    expect(start).toMatchObject({ itemIndex: null, workflowId: stepRunWorkflowId(id, 'one', null) });
    expect(start.input.runId).toBe(stepRunId(id, 'one', null));
    expect(start.input.pipeline).toEqual({ pipelineRunId: id, stepKey: 'one', itemIndex: null });
    expect(start.input.shell?.env).toBeUndefined();
    await expect(pipelines.stepItems({ pipelineRunId: id, stepKey: 'two', from: 0, count: 1 })).rejects.toMatchObject({
      type: 'PipelineStepNotPrepared',
      nonRetryable: true,
    });
  });
});

describe('settleStep', () => {
  test("a fan-out's outputs are its items' in item order; a single run's are its own; settling twice changes nothing", async () => {
    const task = await createTask();
    const pipelineId = await createPipeline(
      definition([
        { key: 'each', taskId: task, forEach: ['a', 'b', 'c'] },
        {
          key: 'after',
          taskId: task,
          dependsOn: ['each'],
          triggerRule: 'all_done',
          overrides: { env: { N: '{{ size(steps.each.outputs) }}' } },
        },
      ]),
    );
    const id = await openedRun(pipelineId);
    await pipelines.prepareStep({ pipelineRunId: id, stepKey: 'each', upstream: {} });
    const starts = await pipelines.stepItems({ pipelineRunId: id, stepKey: 'each', from: 0, count: 50 });
    // Items end out of order; item 1 fails without outputs.
    await runItem(starts[2], 'succeeded', { v: 'c' });
    await runItem(starts[1], 'failed', null);
    await runItem(starts[0], 'succeeded', { v: 'a' });
    const recorded = await ds.query(
      `SELECT id, trigger, pipeline_step_key, item_index, outputs FROM runs WHERE pipeline_run_id = $1 ORDER BY item_index`,
      [id],
    );
    expect(recorded).toEqual([
      { id: starts[0].input.runId, trigger: 'pipeline', pipeline_step_key: 'each', item_index: 0, outputs: { v: 'a' } },
      { id: starts[1].input.runId, trigger: 'pipeline', pipeline_step_key: 'each', item_index: 1, outputs: null },
      { id: starts[2].input.runId, trigger: 'pipeline', pipeline_step_key: 'each', item_index: 2, outputs: { v: 'c' } },
    ]);
    await pipelines.settleStep({ pipelineRunId: id, stepKey: 'each', outcome: 'failed', reason: 'ran', error: '1 of 3 items failed' });
    await pipelines.settleStep({ pipelineRunId: id, stepKey: 'each', outcome: 'succeeded', reason: 'ran', error: null });
    expect(await stepRow(id, 'each')).toMatchObject({
      status: 'failed',
      reason: 'ran',
      error: '1 of 3 items failed',
      outputs: [{ v: 'a' }, null, { v: 'c' }],
      finished_at: expect.any(Date),
    });
    await pipelines.prepareStep({ pipelineRunId: id, stepKey: 'after', upstream: { each: 'failed' } });
    const [after] = await pipelines.stepItems({ pipelineRunId: id, stepKey: 'after', from: 0, count: 1 });
    expect(after.input.shell?.env).toEqual({ N: '3' });
    await runItem(after, 'succeeded', { done: true });
    await pipelines.settleStep({ pipelineRunId: id, stepKey: 'after', outcome: 'succeeded', reason: 'ran', error: null });
    expect(await stepRow(id, 'after')).toMatchObject({ status: 'succeeded', outputs: { done: true } });
  });
});

describe('closeRun', () => {
  test('final once; a failure alerts (once per run), a later success sends the recovery', async () => {
    const task = await createTask();
    const pipelineId = await createPipeline(definition([{ key: 'a', taskId: task }]), {
      webhookUrl: 'https://alerts.example/pipelines',
      onRecovery: true,
    });
    const failed = await openedRun(pipelineId);
    await pipelines.settleStep({ pipelineRunId: failed, stepKey: 'a', outcome: 'failed', reason: 'ran', error: 'exit 1' });
    const closed = await pipelines.closeRun({ pipelineRunId: failed, status: 'failed', error: 'step a failed' });
    expect(closed.alert).toEqual({
      url: 'https://alerts.example/pipelines',
      kind: 'failure',
      idempotencyKey: `alert-pipeline-run-${failed}`,
      payload: expect.objectContaining({
        kind: 'failure',
        tenantId,
        pipelineId,
        pipelineName: expect.stringMatching(/^pipeline-/),
        pipelineRunId: failed,
        status: 'failed',
        error: 'step a failed',
        failedSteps: ['a'],
      }),
    });
    // A retried close: same decision, and the status stays.
    expect(await pipelines.closeRun({ pipelineRunId: failed, status: 'succeeded', error: null })).toEqual(closed);
    const [row] = await ds.query(`SELECT status, error, finished_at FROM pipeline_runs WHERE id = $1`, [failed]);
    expect(row).toEqual({ status: 'failed', error: 'step a failed', finished_at: expect.any(Date) });

    // Another failure within the window is suppressed; then a success recovers.
    const again = await openedRun(pipelineId);
    expect(await pipelines.closeRun({ pipelineRunId: again, status: 'failed', error: 'step a failed' })).toEqual({ alert: null });
    const ok = await openedRun(pipelineId);
    const recovered = await pipelines.closeRun({ pipelineRunId: ok, status: 'succeeded', error: null });
    expect(recovered.alert).toMatchObject({
      kind: 'recovery',
      payload: { status: 'succeeded', failedSteps: [], suppressedSinceLastAlert: 1 },
    });
    const cancelled = await openedRun(pipelineId);
    expect(await pipelines.closeRun({ pipelineRunId: cancelled, status: 'cancelled', error: 'the pipeline run was cancelled' })).toEqual({
      alert: null,
    });
  });
});

describe('with the worker role', () => {
  test('a whole pipeline run is recorded with the grants workers get, alert and retry included', async () => {
    const { Client } = await import('pg');
    const url = new URL(process.env.TEST_DATABASE_URL as string);
    const schema = /search_path=([\w]+)/.exec(url.searchParams.get('options') ?? '')?.[1] ?? 'public';
    const role = `ts_pipeline_worker_${randomBytes(4).toString('hex')}`;
    const password = randomBytes(12).toString('hex');
    const owner = new Client({ connectionString: url.toString() });
    await owner.connect();
    let worker: DataSource | null = null;
    try {
      await ensureAppRole(owner, { role, password, schema, grants: WORKER_ROLE_GRANTS });
      const workerUrl = new URL(url);
      workerUrl.username = role;
      workerUrl.password = password;
      worker = createDataSource({ url: workerUrl.toString(), applicationName: 'task-scheduler-test-pipeline-worker', poolSize: 2 });
      await worker.initialize();
      const recorder = new PipelineRecorder(worker, config);
      const runRecorder = new RunRecorder(worker);

      const task = await createTask({ secrets: SEALED });
      const pipelineId = await createPipeline(
        definition([
          { key: 'a', taskId: task },
          { key: 'b', taskId: task, dependsOn: ['a'], overrides: { env: { N: '{{ steps.a.outputs.n }}' } } },
        ]),
        { webhookUrl: 'https://alerts.example/worker' },
      );
      const id = randomUUID();
      const fire = openArgs(id, pipelineId, { drawn: true, trigger: 'schedule' });
      expect((await recorder.openRun(fire)).kind).toBe('open');
      const step = async (key: string, status: 'succeeded' | 'failed', outputs: RunOutputs | null) => {
        expect((await recorder.prepareStep({ pipelineRunId: id, stepKey: key, upstream: {} })).action).toBe('run');
        const [start] = await recorder.stepItems({ pipelineRunId: id, stepKey: key, from: 0, count: 1 });
        expect(start.input.secrets).toBe(SEALED);
        expect(await runRecorder.ensureRun(start.input, start.workflowId, 'temporal')).toEqual({ duplicateOf: null });
        await runRecorder.finalizeRun({
          runId: start.input.runId,
          status,
          attempts: 1,
          exitCode: 0,
          error: null,
          stdout: null,
          stderr: null,
          outputs,
        });
        await recorder.settleStep({ pipelineRunId: id, stepKey: key, outcome: status, reason: 'ran', error: null });
        return start;
      };
      await step('a', 'succeeded', { n: 7 });
      expect((await step('b', 'failed', null)).input.shell?.env).toEqual({ N: '7' });
      expect((await recorder.closeRun({ pipelineRunId: id, status: 'failed', error: 'step b failed' })).alert).toMatchObject({
        kind: 'failure',
      });

      const retry = await queueRun(pipelineId, { retryOf: id });
      const opened = await recorder.openRun(openArgs(retry, pipelineId, { trigger: 'retry' }));
      expect(opened.kind === 'open' && opened.plan.reused).toEqual(['a']);
    } finally {
      await worker?.destroy();
      await owner.query(`DROP OWNED BY "${role}"`).catch(() => undefined);
      await owner.query(`DROP ROLE IF EXISTS "${role}"`);
      await owner.end();
    }
  });
});

describe('the pipelines migration', () => {
  test('keeps existing schedules and runs; down removes pipeline schedules and tables, and up applies again', async () => {
    const { Client } = await import('pg');
    const { MIGRATIONS } = await import('@task-scheduler/migrations');
    const schema = `ts_pipelines_mig_${Date.now()}_${randomBytes(3).toString('hex')}`;
    const client = new Client({ connectionString: process.env.TEST_DATABASE_URL });
    await client.connect();
    const q = async (sql: string, params?: unknown[]) => (await client.query(sql, params)).rows;
    try {
      await q(`CREATE SCHEMA ${schema}`);
      await q(`SET search_path TO ${schema}, public`);
      const at = MIGRATIONS.findIndex((m) => m.name === 'Pipelines1733000000000');
      const runner = { query: q } as never;
      for (const M of MIGRATIONS.slice(0, at)) await new M().up(runner);
      const [{ id: tenant }] = await q(`INSERT INTO tenants (slug, name) VALUES ('t', 't') RETURNING id`);
      const [{ id: task }] = await q(
        `INSERT INTO tasks (tenant_id, name, executor, spec, timeout_seconds, retry_policy) VALUES ($1, 'a', 'shell', '{}', 60, '{}') RETURNING id`,
        [tenant],
      );
      const schedule = `INSERT INTO schedules (tenant_id, task_id, pipeline_id, name, spec, policies, temporal_schedule_id)
                        VALUES ($1, $2, $3, $4, '{}', '{}', $4) RETURNING id`;
      await q(
        `INSERT INTO schedules (tenant_id, task_id, name, spec, policies, temporal_schedule_id) VALUES ($1, $2, 'task-schedule', '{}', '{}', 'x')`,
        [tenant, task],
      );
      await q(
        `INSERT INTO runs (id, tenant_id, task_id, task_version, trigger, status, workflow_id) VALUES (gen_random_uuid(), $1, $2, 1, 'manual', 'queued', 'w1')`,
        [tenant, task],
      );

      // Both pipeline migrations, the second (the columns of `runs`) outside a transaction as TypeORM runs it.
      const both = MIGRATIONS.slice(at, at + 2);
      expect(both.map((M) => new M()).map((m) => [m.name, (m as { transaction?: boolean }).transaction])).toEqual([
        ['Pipelines1733000000000', undefined],
        ['PipelineStepRuns1733000000001', false],
      ]);
      const up = async () => {
        for (const M of both) await new M().up(runner);
      };
      await up();
      expect(
        await q(
          `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'runs' AND indexname LIKE 'runs_pipeline%'`,
        ),
      ).toEqual([{ indexname: 'runs_pipeline_item_uq' }]);
      expect(
        await q(`SELECT convalidated FROM pg_constraint WHERE conname = 'runs_pipeline_run_fk' AND conrelid = 'runs'::regclass`),
      ).toEqual([{ convalidated: true }]);
      // Applied again after a failure part-way (outside a transaction nothing rolls back): it completes.
      await new both[1]().up(runner);
      expect(await q(`SELECT pipeline_id, params, outputs FROM schedules, runs`)).toEqual([
        { pipeline_id: null, params: null, outputs: null },
      ]);
      const [{ id: pipeline }] = await q(
        `INSERT INTO pipelines (tenant_id, name, version, definition) VALUES ($1, 'p', 1, '{}') RETURNING id`,
        [tenant],
      );
      await expect(q(schedule, [tenant, task, pipeline, 'both'])).rejects.toMatchObject({ code: '23514' });
      await expect(q(schedule, [tenant, null, null, 'neither'])).rejects.toMatchObject({ code: '23514' });
      const [{ id: pipelineSchedule }] = await q(schedule, [tenant, null, pipeline, 'pipeline-schedule']);
      await q(`INSERT INTO schedule_events (schedule_id, tenant_id, kind) VALUES ($1, $2, 'created')`, [pipelineSchedule, tenant]);
      const [{ id: pipelineRun }] = await q(
        `INSERT INTO pipeline_runs (id, tenant_id, pipeline_id, pipeline_version, trigger, workflow_id, schedule_id, scheduled_at)
         VALUES (gen_random_uuid(), $1, $2, 1, 'schedule', 'p1', $3, now()) RETURNING id`,
        [tenant, pipeline, pipelineSchedule],
      );
      const stepRun = `INSERT INTO runs (id, tenant_id, task_id, task_version, trigger, status, workflow_id, pipeline_run_id, pipeline_step_key)
                       VALUES (gen_random_uuid(), $1, $2, 1, 'pipeline', 'queued', $3, $4, 'a')`;
      await q(stepRun, [tenant, task, 'w2', pipelineRun]);
      await expect(q(stepRun, [tenant, task, 'w3', pipelineRun])).rejects.toMatchObject({ code: '23505' }); // one run per item

      for (const M of [...both].reverse()) await new M().down(runner);
      expect(await q(`SELECT name FROM schedules`)).toEqual([{ name: 'task-schedule' }]);
      expect(await q(`SELECT trigger FROM runs ORDER BY trigger`)).toEqual([{ trigger: 'manual' }, { trigger: 'pipeline' }]);
      expect(await q(`SELECT to_regclass('pipelines') IS NULL AS gone`)).toEqual([{ gone: true }]);
      await up();
    } finally {
      await q(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    }
  });
});
