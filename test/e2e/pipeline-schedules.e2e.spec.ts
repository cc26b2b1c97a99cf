/* Schedules of pipelines: fires that run the pipeline with the schedule's params, the Temporal action,
 * `/fires` read from pipeline runs, trigger now, validation with nothing stored, and the schedules a
 * pipeline delete takes with it. Real API, Temporal dev server and workers, real PostgreSQL; every
 * schedule is deleted when its test ends so it stops firing. */
import { randomBytes } from 'node:crypto';
import { Client, Connection, ScheduleNotFoundError } from '@temporalio/client';
import { ScheduleReconciler } from '../../apps/api/src/schedules/schedule-reconciler';
import { ContractValidator } from '../support/openapi-contract';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';
import { eventually } from '../support/eventually';
import { pipelineClient, stepOf, stepStates } from '../support/pipelines';
import type { PipelineClient } from '../support/pipelines';

const TIMEOUT_MS = 120_000;

let stack: TestStack;
let p: PipelineClient;
let other: PipelineClient;
let connection: Connection;
let client: Client;
let tenantId: string;
/** The OpenAPI document as a check of the answers that differ for pipeline schedules. */
let contract: ContractValidator;

/** Schedules created by the running test and not deleted yet (afterEach deletes them, pass or fail). */
const live = new Set<string>();

beforeAll(async () => {
  // The reconciler's timer off: its passes are run by the test.
  stack = await startStack('pipeline-schedules', { env: { SCHEDULE_RECONCILE_SECONDS: '0' } });
  const tenant = await stack.createTenant(`pipe-sched-${randomBytes(3).toString('hex')}`, { maxConcurrentRuns: 50 });
  tenantId = tenant.tenantId;
  p = pipelineClient(stack, tenant.apiKey);
  other = pipelineClient(stack, (await stack.createTenant(`pipe-sched-other-${randomBytes(3).toString('hex')}`)).apiKey);
  connection = await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS });
  client = new Client({ connection });
  contract = new ContractValidator((await stack.request('GET', '/docs-json', { apiKey: null })).body);
});
afterEach(async () => {
  for (const id of [...live]) await deleteSchedule(id);
});
afterAll(async () => {
  await connection?.close();
  await stack?.stop();
});

/** Sends a request and checks the answer against the OpenAPI document (`path` as the document spells it). */
async function checked(method: string, documented: string, path: string, body?: unknown) {
  const res = await p.request(method, path, body);
  expect(contract.check(documented, method, res.status, res.body, res.headers)).toEqual([]);
  return res;
}

async function createSchedule(body: Record<string, unknown>): Promise<any> {
  const res = await checked('POST', '/v1/schedules', '/v1/schedules', { ...body, name: `${body.name}-${randomBytes(3).toString('hex')}` });
  expect([res.status, res.body.error]).toEqual([201, undefined]);
  live.add(res.body.id);
  return res.body;
}

async function deleteSchedule(id: string): Promise<void> {
  const res = await p.request('DELETE', `/v1/schedules/${id}`);
  expect([204, 404]).toContain(res.status);
  live.delete(id);
}

/** A pipeline of two steps: `show` gets the params `date` (required) and `limit` (default 5) as env, then `after`. */
async function paramPipeline(): Promise<any> {
  const show = await p.createTask({
    name: 'show',
    shell: { script: 'echo "day $DAY limit $LIMIT"; echo "day=$DAY" >> "$TASK_OUTPUTS"; echo "limit=$LIMIT" >> "$TASK_OUTPUTS"' },
  });
  const after = await p.createTask({ name: 'after', shell: { script: 'true' } });
  return p.createPipeline({
    name: 'scheduled',
    parameters: [{ name: 'date' }, { name: 'limit', default: 5 }],
    steps: [
      { key: 'show', task: show, overrides: { env: { DAY: '{{ params.date }}', LIMIT: '{{ params.limit }}' } } },
      { key: 'after', task: after, dependsOn: ['show'] },
    ],
  });
}

/** A reconciler pass that has the lock (the start-up pass may still hold it for a moment). */
async function reconcile() {
  const reconciler = stack.app.get(ScheduleReconciler);
  for (let i = 0; i < 50; i++) {
    const report = await reconciler.reconcile();
    if (report) return report;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the reconciler lock was never free');
}

/** Fires on 1 January only: during a test only triggers start runs. */
const yearly = { cron: ['0 0 1 1 *'] };

test(
  'a schedule every 2 s runs its pipeline with the schedule’s params, the pipeline’s defaults applied at the fire',
  async () => {
    const pipeline = await paramPipeline();
    const s = await createSchedule({
      name: 'every-2s',
      pipelineId: pipeline.id,
      params: { date: '2026-12-02' },
      spec: { intervals: [{ everySeconds: 2 }] },
    });
    // Stored as given: the default of `limit` is not frozen into the schedule.
    expect(s).toMatchObject({ taskId: null, pipelineId: pipeline.id, params: { date: '2026-12-02' }, temporal: 'ok' });

    const action = (await client.schedule.getHandle(s.temporalScheduleId).describe()).action as any;
    expect(action).toMatchObject({
      workflowType: 'pipelineRunWorkflow',
      taskQueue: `${stack.config.TASK_QUEUE_PREFIX}.workflows`,
      workflowId: `schedule-${s.id}`,
      args: [{ tenantId, pipelineId: pipeline.id, scheduleId: s.id, params: { date: '2026-12-02' }, trigger: 'schedule' }],
      memo: { pipelineName: pipeline.name, scheduleVersion: 1 },
    });

    // At least one fire ran the whole pipeline.
    const [first] = await eventually(
      () =>
        stack.db.query(`SELECT id FROM pipeline_runs WHERE schedule_id = $1 AND status = 'succeeded' ORDER BY scheduled_at LIMIT 1`, [
          s.id,
        ]),
      (rows: { id: string }[]) => rows.length > 0,
      60_000,
    );
    const schedule = (await checked('GET', '/v1/schedules/{id}', `/v1/schedules/${s.id}`)).body;
    const fires = (await checked('GET', '/v1/schedules/{id}/fires', `/v1/schedules/${s.id}/fires?from=${s.createdAt}`)).body.items;
    await deleteSchedule(s.id);

    const run = await p.getPipelineRun(first.id);
    expect(run).toMatchObject({
      pipelineId: pipeline.id,
      pipelineVersion: 1,
      trigger: 'schedule',
      scheduleId: s.id,
      status: 'succeeded',
      params: { date: '2026-12-02', limit: 5 },
    });
    expect(Date.parse(run.scheduledAt) % 2_000).toBe(0);
    expect(run.workflowId.startsWith(`schedule-${s.id}-`)).toBe(true);
    expect(stepStates(run)).toEqual({ show: ['succeeded', 'ran'], after: ['succeeded', 'ran'] });
    expect(stepOf(run, 'show').outputs).toEqual({ day: '2026-12-02', limit: '5' });

    // The drawn run id is findable in the Temporal UI.
    const sa = (await client.workflow.getHandle(run.workflowId).describe()).searchAttributes as Record<string, unknown[]>;
    expect({ PipelineRunId: sa.PipelineRunId, Trigger: sa.Trigger, TenantId: sa.TenantId }).toEqual({
      PipelineRunId: [run.id],
      Trigger: ['schedule'],
      TenantId: [tenantId],
    });

    const listed = await p.request('GET', `/v1/pipeline-runs?trigger=schedule&pipelineId=${pipeline.id}&limit=200`);
    expect(listed.body.items.map((r: any) => r.id)).toContain(run.id);
    // The schedule's last run and its fires are its pipeline runs.
    expect(schedule.lastRun.runId).toEqual(expect.any(String));
    const lastRow = await stack.db.query(`SELECT id FROM pipeline_runs WHERE id = $1 AND schedule_id = $2`, [schedule.lastRun.runId, s.id]);
    expect(lastRow).toHaveLength(1);
    expect(fires.find((f: any) => f.runId === run.id)).toMatchObject({ outcome: 'ran', scheduledAt: run.scheduledAt, reason: null });
  },
  TIMEOUT_MS,
);

test(
  'trigger now answers with the pipeline run the fire started',
  async () => {
    const pipeline = await paramPipeline();
    const s = await createSchedule({ name: 'trigger', pipelineId: pipeline.id, params: { date: '2026-12-03', limit: 7 }, spec: yearly });
    const triggeredAt = Date.now();
    const fired = await checked('POST', '/v1/schedules/{id}/trigger', `/v1/schedules/${s.id}/trigger`, {});
    // (A pipeline run has an `error` field of its own: null here.)
    expect([fired.status, fired.body.error]).toEqual([202, null]);
    expect(fired.headers.get('location')).toBe(`/v1/pipeline-runs/${fired.body.id}`);
    expect(fired.body).toMatchObject({
      pipelineId: pipeline.id,
      pipelineName: pipeline.name,
      trigger: 'schedule',
      scheduleId: s.id,
      params: { date: '2026-12-03', limit: 7 },
    });
    expect(Math.abs(Date.parse(fired.body.scheduledAt) - triggeredAt)).toBeLessThan(10_000);
    const run = await p.waitForPipelineRun(fired.body.id);
    expect([run.status, stepOf(run, 'show').outputs]).toEqual(['succeeded', { day: '2026-12-03', limit: '7' }]);
  },
  TIMEOUT_MS,
);

test(
  'backfill starts the pipeline runs of the fires without one; the whole range again starts no second run of a fire',
  async () => {
    const pipeline = await paramPipeline();
    // Paused, so that only the backfills start runs: Temporal runs the backfills of a paused schedule.
    const s = await createSchedule({
      name: 'backfill',
      pipelineId: pipeline.id,
      params: { date: 'b' },
      spec: { cron: ['* * * * *'] },
      paused: true,
    });
    const MINUTE = 60_000;
    const T = Math.floor(Date.now() / MINUTE) * MINUTE;
    const range = { start: new Date(T - 3 * MINUTE).toISOString(), end: new Date(T - MINUTE).toISOString() };
    const rows = (): Promise<{ id: string; scheduled_at: Date; status: string }[]> =>
      stack.db.query(`SELECT id, scheduled_at, status FROM pipeline_runs WHERE schedule_id = $1 ORDER BY scheduled_at`, [s.id]);

    const first = await p.request('POST', `/v1/schedules/${s.id}/backfill`, range);
    expect([first.status, first.body]).toEqual([202, { fires: 3, alreadyRan: 0, started: 3 }]);
    const ran = await eventually(rows, (rs) => rs.length >= 3 && rs.every((r) => r.status === 'succeeded'), 60_000);
    expect(ran.map((r) => r.scheduled_at.getTime())).toEqual([T - 3 * MINUTE, T - 2 * MINUTE, T - MINUTE]);

    const again = await p.request('POST', `/v1/schedules/${s.id}/backfill`, { ...range, onlyMissing: false });
    expect([again.status, again.body]).toEqual([202, { fires: 3, alreadyRan: 3, started: 0 }]);
    // The workflows of the fires sent again find their fire recorded and end as duplicates.
    const actions = await eventually(
      async () => (await p.request('GET', `/v1/schedules/${s.id}`)).body.stats.actionsTaken,
      (n: number) => n >= 6,
      30_000,
    );
    expect(actions).toBe(6);
    // Every fire's workflow closed, so none can still record a run: only then does "no new row" mean something.
    const fires = await eventually(
      async () => {
        const { recentActions } = (await client.schedule.getHandle(s.temporalScheduleId).describe()).info;
        return Promise.all(
          recentActions.map(async ({ action: { workflow } }) => {
            const described = await client.workflow.getHandle(workflow.workflowId, workflow.firstExecutionRunId).describe();
            return described.status.name;
          }),
        );
      },
      (statuses) => statuses.length === 6 && !statuses.includes('RUNNING'),
      30_000,
    );
    expect(fires).toHaveLength(6);
    expect((await rows()).map((r) => r.id)).toEqual(ran.map((r) => r.id));
  },
  TIMEOUT_MS,
);

describe('validation, with nothing stored', () => {
  test(
    'exactly one of taskId and pipelineId; params only for a pipeline, and only those it declares',
    async () => {
      const pipeline = await paramPipeline();
      const taskId = await p.createTask({ name: 'plain', shell: { script: 'true' } });
      const foreign = await other.createPipeline({
        name: 'foreign',
        steps: [{ key: 'a', task: await other.createTask({ name: 'x', shell: { script: 'true' } }) }],
      });
      const name = `bad-${randomBytes(3).toString('hex')}`;
      const spec = yearly;
      const cases: [string, Record<string, unknown>, number, string, string][] = [
        ['both ids', { taskId, pipelineId: pipeline.id, params: { date: 'x' } }, 422, 'SCHEDULE_TARGET_INVALID', 'pipelineId'],
        ['neither id', {}, 422, 'SCHEDULE_TARGET_INVALID', 'taskId'],
        ['params on a task schedule', { taskId, params: { date: 'x' } }, 422, 'SCHEDULE_TARGET_INVALID', 'params'],
        ['an unknown param', { pipelineId: pipeline.id, params: { date: 'x', dat: 'y' } }, 422, 'PIPELINE_PARAMS_INVALID', 'params.dat'],
        ['a required param missing', { pipelineId: pipeline.id, params: { limit: 3 } }, 422, 'PIPELINE_PARAMS_INVALID', 'params.date'],
        ['another tenant’s pipeline', { pipelineId: foreign.id }, 422, 'SCHEDULE_PIPELINE_NOT_FOUND', 'pipelineId'],
        ['params that are not an object', { pipelineId: pipeline.id, params: ['x'] }, 400, 'VALIDATION_FAILED', 'params'],
      ];
      for (const [what, body, status, code, field] of cases) {
        const res = await p.request('POST', '/v1/schedules', { name, spec, ...body });
        expect({ what, status: res.status, code: res.body.error?.code, fields: res.body.error?.details?.map((d: any) => d.field) }).toEqual(
          {
            what,
            status,
            code,
            fields: [field],
          },
        );
      }
      const [{ n }] = await stack.db.query(`SELECT count(*)::int AS n FROM schedules WHERE tenant_id = $1 AND name = $2`, [tenantId, name]);
      expect(n).toBe(0);
      const temporal: string[] = [];
      for await (const t of client.schedule.list()) temporal.push(t.scheduleId);
      const rows: { temporal_schedule_id: string }[] = await stack.db.query(`SELECT temporal_schedule_id FROM schedules`);
      const known = new Set(rows.map((r) => r.temporal_schedule_id));
      expect(temporal.filter((id) => id.startsWith(`${stack.config.TASK_QUEUE_PREFIX}.schedule.`) && !known.has(id))).toEqual([]);
    },
    TIMEOUT_MS,
  );

  test(
    'PATCH replaces the params after checking them against the pipeline; a task schedule takes none',
    async () => {
      const pipeline = await paramPipeline();
      const s = await createSchedule({ name: 'patch', pipelineId: pipeline.id, params: { date: '2026-12-02' }, spec: yearly });
      const bad = await p.request('PATCH', `/v1/schedules/${s.id}`, { params: { when: 'today' } });
      expect([bad.status, bad.body.error.code]).toEqual([422, 'PIPELINE_PARAMS_INVALID']);
      expect(bad.body.error.details.map((d: any) => d.field)).toEqual(['params.when', 'params.date']);
      expect((await p.request('GET', `/v1/schedules/${s.id}`)).body).toMatchObject({ version: 1, params: { date: '2026-12-02' } });

      const good = await p.request('PATCH', `/v1/schedules/${s.id}`, { params: { date: '2027-01-01', limit: 1 } });
      expect([good.status, good.body.error]).toEqual([200, undefined]);
      expect(good.body).toMatchObject({ version: 2, params: { date: '2027-01-01', limit: 1 } });
      const action = (await client.schedule.getHandle(s.temporalScheduleId).describe()).action as any;
      expect(action.args[0].params).toEqual({ date: '2027-01-01', limit: 1 });
      expect(action.memo.scheduleVersion).toBe(2);

      const taskId = await p.createTask({ name: 'plain', shell: { script: 'true' } });
      const t = await createSchedule({ name: 'task', taskId, spec: yearly });
      expect(t).toMatchObject({ taskId, pipelineId: null, params: null });
      const onTask = await p.request('PATCH', `/v1/schedules/${t.id}`, { params: { date: 'x' } });
      expect([onTask.status, onTask.body.error.code, onTask.body.error.details[0].field]).toEqual([
        422,
        'SCHEDULE_TARGET_INVALID',
        'params',
      ]);
    },
    TIMEOUT_MS,
  );
});

test(
  'deleting the pipeline is refused while a schedule starts it; with cascade the schedule goes too, in Temporal as well',
  async () => {
    const pipeline = await paramPipeline();
    const s = await createSchedule({ name: 'cascade', pipelineId: pipeline.id, params: { date: 'x' }, spec: yearly });
    const listed = await p.request('GET', `/v1/schedules?pipelineId=${pipeline.id}`);
    expect(listed.body.items.map((x: any) => x.id)).toEqual([s.id]);

    const refused = await p.request('DELETE', `/v1/pipelines/${pipeline.id}`);
    expect([refused.status, refused.body.error.code, refused.body.error.details[0].scheduleId]).toEqual([409, 'PIPELINE_IN_USE', s.id]);
    const deleted = await p.request('DELETE', `/v1/pipelines/${pipeline.id}?cascade=true`);
    expect([deleted.status, deleted.body.deletedSchedules]).toEqual([200, [{ id: s.id, name: s.name }]]);
    live.delete(s.id);

    expect((await p.request('GET', `/v1/schedules/${s.id}`)).status).toBe(404);
    await expect(client.schedule.getHandle(s.temporalScheduleId).describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
    const events = await stack.db.query(`SELECT kind, note, details FROM schedule_events WHERE schedule_id = $1 ORDER BY at, id`, [s.id]);
    expect(events.map((e: any) => [e.kind, e.note, e.details.cause ?? null])).toEqual([
      ['created', null, null],
      ['deleted', 'pipeline deleted', 'pipeline_deleted'],
    ]);
  },
  TIMEOUT_MS,
);

test(
  'the reconciler recreates a pipeline schedule Temporal lost, with its pipeline action',
  async () => {
    const pipeline = await paramPipeline();
    const s = await createSchedule({ name: 'lost', pipelineId: pipeline.id, params: { date: 'x' }, spec: yearly });
    await client.schedule.getHandle(s.temporalScheduleId).delete();
    expect((await reconcile()).created).toContain(s.id);
    const action = (await client.schedule.getHandle(s.temporalScheduleId).describe()).action as any;
    expect(action).toMatchObject({ workflowType: 'pipelineRunWorkflow', args: [{ pipelineId: pipeline.id, params: { date: 'x' } }] });
    // A pipeline edit needs no resync: the next pass finds nothing to repair.
    const edited = await p.request('PATCH', `/v1/pipelines/${pipeline.id}`, { description: 'edited' });
    expect(edited.status).toBe(200);
    const again = await reconcile();
    expect([...again.created, ...again.updated, ...again.pauseFixed, ...again.errors]).not.toContain(s.id);
  },
  TIMEOUT_MS,
);
