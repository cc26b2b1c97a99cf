/* Schedules over HTTP: validation with nothing half-written, the reconciler, business calendars,
 * tenant suspension and previews — real API, real Temporal dev server, real PostgreSQL. */
import { Client, Connection, ScheduleNotFoundError } from '@temporalio/client';
import { startStack } from '../support/stack';
import { eventually } from '../support/eventually';
import type { TestStack } from '../support/stack';
import { checkReplayAndRecord } from '../support/replay-fixtures';

let stack: TestStack;
let connection: Connection;
let client: Client;
let tenant: { tenantId: string; apiKey: string };
let taskId: string;

const TIMEOUT_MS = 90_000;

beforeAll(async () => {
  stack = await startStack('schedules', { env: { SCHEDULE_RECONCILE_SECONDS: '2' } });
  connection = await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS });
  client = new Client({ connection });
  tenant = await stack.createTenant(`sched-${Date.now()}`, { maxConcurrentRuns: 20 });
  const task = await api('POST', '/v1/tasks', {
    name: 'scheduled',
    executor: 'shell',
    shell: { command: 'true' },
    retry: { maximumAttempts: 1 },
  });
  taskId = task.body.id;
});
afterAll(async () => {
  await connection?.close();
  await stack?.stop();
});

function api(method: string, path: string, body?: unknown, key = tenant.apiKey) {
  return stack.request(method, path, { body, apiKey: key });
}

async function temporalScheduleIds(): Promise<string[]> {
  const ids: string[] = [];
  for await (const s of client.schedule.list()) if (s.scheduleId.startsWith(`${stack.config.TASK_QUEUE_PREFIX}.`)) ids.push(s.scheduleId);
  return ids;
}

const daily = (extra: Record<string, unknown> = {}) => ({
  name: `s-${Math.random().toString(36).slice(2, 10)}`,
  taskId,
  spec: { cron: ['0 12 * * *'], timezone: 'Europe/Berlin', ...extra },
});

describe('bad input', () => {
  test(
    'each bad spec is refused with a code naming the field, and nothing is created in PostgreSQL or Temporal',
    async () => {
      const other = await stack.createTenant(`sched-other-${Date.now()}`);
      const otherTask = await api('POST', '/v1/tasks', { name: 'theirs', executor: 'shell', shell: { command: 'true' } }, other.apiKey);
      const before = await temporalScheduleIds();
      const cases: [Record<string, unknown>, number, string, string][] = [
        [daily({ cron: ['61 * * * *'] }), 400, 'SCHEDULE_INVALID_CRON', 'spec.cron[0]'],
        [daily({ cron: ['* * *'] }), 400, 'SCHEDULE_INVALID_CRON', 'spec.cron[0]'],
        [daily({ cron: ['0 9 * * *', '0 0 ? * MON'] }), 400, 'SCHEDULE_INVALID_CRON', 'spec.cron[1]'],
        [daily({ cron: ['0 0 L-3 * *'] }), 400, 'SCHEDULE_INVALID_CRON', 'spec.cron[0]'],
        [daily({ cron: ['@daily'] }), 400, 'SCHEDULE_INVALID_CRON', 'spec.cron[0]'],
        [daily({ cron: ['0 0 1 uar *'] }), 400, 'SCHEDULE_INVALID_CRON', 'spec.cron[0]'],
        [daily({ calendars: [{ year: '1999' }] }), 400, 'SCHEDULE_INVALID_CALENDAR', 'spec.calendars[0].year'],
        [
          { ...daily(), spec: { intervals: [{ everySeconds: 900, offsetSeconds: 900 }] } },
          400,
          'SCHEDULE_INVALID_INTERVAL',
          'spec.intervals[0].offsetSeconds',
        ],
        [daily({ timezone: 'Mars/Olympus_Mons' }), 400, 'SCHEDULE_INVALID_TIMEZONE', 'spec.timezone'],
        [daily({ startAt: '2027-01-02T00:00:00Z', endAt: '2027-01-01T00:00:00Z' }), 400, 'SCHEDULE_INVALID_RANGE', 'spec.endAt'],
        [{ ...daily(), spec: { intervals: [{ everySeconds: 0 }] } }, 400, 'VALIDATION_FAILED', 'spec.intervals[0].everySeconds'],
        [{ ...daily(), spec: { timezone: 'UTC' } }, 422, 'SCHEDULE_SPEC_EMPTY', 'spec'],
        [daily({ exclude: [{ hour: '*', minute: '*', second: '*' }] }), 422, 'SCHEDULE_NEVER_FIRES', 'spec'],
        [daily({ calendars: [{ hour: '25' }] }), 400, 'SCHEDULE_INVALID_CALENDAR', 'spec.calendars[0].hour'],
        [{ ...daily(), taskId: otherTask.body.id }, 422, 'SCHEDULE_TASK_NOT_FOUND', 'taskId'],
        [daily({ excludeCalendarIds: ['00000000-0000-4000-8000-000000000000'] }), 404, 'CALENDAR_NOT_FOUND', 'spec.excludeCalendarIds[0]'],
      ];
      for (const [body, status, code, field] of cases) {
        const res = await api('POST', '/v1/schedules', body);
        expect([JSON.stringify(body), res.status, res.body.error?.code]).toEqual([JSON.stringify(body), status, code]);
        expect(JSON.stringify(res.body.error.details)).toContain(field);
      }
      const [{ n }] = await stack.db.query(`SELECT count(*)::int AS n FROM schedules WHERE tenant_id = $1`, [tenant.tenantId]);
      expect(n).toBe(0);
      // No schedule of this deployment appeared (previews create and delete their own short-lived ones).
      const after = await temporalScheduleIds();
      expect(after.filter((id) => id.includes('.schedule.') && !before.includes(id))).toEqual([]);
    },
    TIMEOUT_MS,
  );
});

describe('reconciler', () => {
  test(
    'a Temporal Schedule deleted behind the product’s back is recreated, and an orphan of this deployment is removed',
    async () => {
      const created = await api('POST', '/v1/schedules', daily());
      expect(created.status).toBe(201);
      expect(created.body.temporal).toBe('ok');
      const handle = client.schedule.getHandle(created.body.temporalScheduleId);
      await handle.delete();
      // Missing now, unless the reconciler (every 2 s here) was quicker than this read: the `repaired` event
      // below is what shows it found the schedule gone.
      expect(['missing', 'ok']).toContain((await api('GET', `/v1/schedules/${created.body.id}`)).body.temporal);

      const repaired = await eventually(
        () => api('GET', `/v1/schedules/${created.body.id}`).then((r) => r.body),
        (b) => b.temporal === 'ok',
        20_000,
      );
      expect(repaired.nextFires.length).toBeGreaterThan(0);
      const description = await handle.describe();
      expect(description.spec.timezone).toBe('Europe/Berlin');
      const events = await stack.db.query(`SELECT kind, note FROM schedule_events WHERE schedule_id = $1 ORDER BY at`, [created.body.id]);
      expect(events.map((e: { kind: string }) => e.kind)).toEqual(['created', 'repaired']);

      // A schedule under this deployment's prefix with no row (e.g. a commit that failed after Temporal accepted).
      const orphanId = `${stack.config.TASK_QUEUE_PREFIX}.schedule.00000000-0000-4000-8000-${Date.now().toString().slice(-12)}`;
      await client.schedule.create({
        scheduleId: orphanId,
        spec: { intervals: [{ every: '1h' }] },
        action: { type: 'startWorkflow', workflowType: 'taskRunWorkflow', taskQueue: 'nowhere', args: [] },
        state: { paused: true },
      });
      await eventually(
        async () => {
          try {
            await client.schedule.getHandle(orphanId).describe();
            return false;
          } catch (err) {
            return err instanceof ScheduleNotFoundError;
          }
        },
        (gone) => gone,
        45_000, // orphans are only removed once 15 s old (a create's row may not be committed yet)
      );
      expect((await api('DELETE', `/v1/schedules/${created.body.id}`)).status).toBe(204);
    },
    TIMEOUT_MS,
  );
});

describe('business calendars', () => {
  test(
    'holidays and weekly windows remove exactly the listed fires; changing the calendar updates the schedules using it',
    async () => {
      // Daily 12:00 Berlin from 2027-03-01 (a Monday): holidays on 2027-03-03 and 2027-03-05, Sundays 11:00-13:00 closed.
      const cal = await api('POST', '/v1/calendars', {
        name: `ops-${Date.now()}`,
        holidays: ['2027-03-05', '2027-03-03'],
        weeklyWindows: [{ dayOfWeek: 0, start: '11:00', end: '13:00' }],
      });
      expect(cal.status).toBe(201);
      expect(cal.body.holidays).toEqual(['2027-03-03', '2027-03-05']);
      const s = await api('POST', '/v1/schedules', daily({ excludeCalendarIds: [cal.body.id], startAt: '2027-03-01T00:00:00Z' }));
      expect(s.status).toBe(201);

      const days = async (): Promise<string[]> => {
        const p = await api('GET', `/v1/schedules/${s.body.id}/preview?count=10&from=2027-03-01T00:00:00Z`);
        expect(p.status).toBe(200);
        return p.body.fires.map((f: { local: string }) => f.local);
      };
      const all = ['01', '02', '03', '04', '05', '06', '07', '08', '09', '10', '11', '12', '13', '14', '15'].map(
        (d) => `2027-03-${d}T12:00:00+01:00`,
      );
      const without = (...gone: string[]) => all.filter((t) => !gone.some((g) => t.startsWith(`2027-03-${g}`)));
      expect(await days()).toEqual(without('03', '05', '07', '14').slice(0, 10));

      const changed = await api('PATCH', `/v1/calendars/${cal.body.id}`, { holidays: ['2027-03-03', '2027-03-05', '2027-03-09'] });
      expect(changed.status).toBe(200);
      expect(changed.body.schedulesUpdated).toBe(1);
      expect(await days()).toEqual(without('03', '05', '07', '09', '14').slice(0, 10));
      // Temporal itself holds the new exclusions (not only the preview).
      const description = await client.schedule.getHandle(s.body.temporalScheduleId).describe();
      expect(JSON.stringify(description.spec.skip)).toContain('2027-03-09');

      const inUse = await api('DELETE', `/v1/calendars/${cal.body.id}`);
      expect(inUse.status).toBe(409);
      expect(inUse.body.error.code).toBe('CALENDAR_IN_USE');
      expect(inUse.body.error.details).toEqual([expect.objectContaining({ scheduleId: s.body.id })]);
      expect((await api('DELETE', `/v1/schedules/${s.body.id}`)).status).toBe(204);
      expect((await api('DELETE', `/v1/calendars/${cal.body.id}`)).status).toBe(204);
    },
    TIMEOUT_MS,
  );
});

describe('tenant suspension', () => {
  test(
    "suspending a tenant pauses its schedules in Temporal; resuming restores each schedule's own state",
    async () => {
      const running = await api('POST', '/v1/schedules', daily());
      const userPaused = await api('POST', '/v1/schedules', { ...daily(), paused: true, note: 'by hand' });
      expect([running.status, userPaused.status]).toEqual([201, 201]);
      const state = async (id: string) => (await client.schedule.getHandle(id).describe()).state;

      const suspend = await stack.request('PATCH', `/v1/tenants/${tenant.tenantId}`, { body: { status: 'suspended' } });
      expect(suspend.status).toBe(200);
      expect(await state(running.body.temporalScheduleId)).toMatchObject({ paused: true, note: 'paused: tenant suspended' });
      expect((await state(userPaused.body.temporalScheduleId)).paused).toBe(true);

      const resume = await stack.request('PATCH', `/v1/tenants/${tenant.tenantId}`, { body: { status: 'active' } });
      expect(resume.status).toBe(200);
      expect((await state(running.body.temporalScheduleId)).paused).toBe(false);
      expect(await state(userPaused.body.temporalScheduleId)).toMatchObject({ paused: true, note: 'by hand' });
      for (const s of [running, userPaused]) expect((await api('DELETE', `/v1/schedules/${s.body.id}`)).status).toBe(204);
    },
    TIMEOUT_MS,
  );
});

describe('previews and reads', () => {
  test(
    'a spec can be previewed before it is saved; a saved schedule shows next fires, flags DST and lists with filters',
    async () => {
      const unsaved = await api('POST', '/v1/schedules/preview?count=3&from=2027-03-27T00:00:00Z', {
        cron: ['30 2 * * *'],
        timezone: 'Europe/Berlin',
      });
      expect(unsaved.status).toBe(200);
      expect(unsaved.body.fires).toHaveLength(3);
      expect(unsaved.body.dstTransitions.length).toBeGreaterThanOrEqual(1);
      expect(unsaved.body.dstTransitions[0]).toMatchObject({ kind: 'gap', localStart: '2027-03-28T02:00' });
      expect(typeof unsaved.body.dstTransitions[0].effect).toBe('string');
      const bad = await api('POST', '/v1/schedules/preview', { cron: ['not a cron'] });
      expect(bad.status).toBe(400);
      // Six fields put seconds first; calendar fields take cron-style steps.
      const everyTen = await api('POST', '/v1/schedules/preview?count=3&from=2027-01-01T00:00:00Z', { cron: ['*/10 * * * * *'] });
      expect(everyTen.body.fires.map((f: { at: string }) => f.at)).toEqual([
        '2027-01-01T00:00:00.000Z', // a fire exactly at `from` is included
        '2027-01-01T00:00:10.000Z',
        '2027-01-01T00:00:20.000Z',
      ]);
      const quarter = await api('POST', '/v1/schedules/preview?count=3&from=2027-01-01T00:00:00Z', {
        calendars: [{ hour: '*', minute: '*/15' }],
      });
      expect(quarter.body.fires.map((f: { at: string }) => f.at)).toEqual([
        '2027-01-01T00:00:00.000Z',
        '2027-01-01T00:15:00.000Z',
        '2027-01-01T00:30:00.000Z',
      ]);

      const s = await api('POST', '/v1/schedules', daily());
      const got = await api('GET', `/v1/schedules/${s.body.id}`);
      expect(got.body).toMatchObject({
        id: s.body.id,
        taskId,
        paused: false,
        temporal: 'ok',
        policies: { overlap: 'skip', catchupWindowSeconds: 60 },
      });
      expect(got.body.nextFires.length).toBeGreaterThan(0);
      expect(got.body.nextFires[0].local).toMatch(/T12:00:00\+0[12]:00$/);
      expect(got.body.temporalUiUrl).toContain(`/schedules/${encodeURIComponent(s.body.temporalScheduleId)}`);
      const thousand = await api('GET', `/v1/schedules/${s.body.id}/preview?count=1000`);
      expect(thousand.body.fires).toHaveLength(1000);
      expect((await api('GET', `/v1/schedules/${s.body.id}/preview?count=1001`)).status).toBe(400);

      const listed = await api('GET', `/v1/schedules?taskId=${taskId}&paused=false&limit=200`);
      expect(listed.body.items.map((i: { id: string }) => i.id)).toContain(s.body.id);
      const patched = await api('PATCH', `/v1/schedules/${s.body.id}`, { policies: { overlap: 'buffer_one' } });
      expect(patched.body).toMatchObject({ version: 2, policies: { overlap: 'buffer_one', catchupWindowSeconds: 60 } });
      expect((await client.schedule.getHandle(s.body.temporalScheduleId).describe()).policies.overlap).toBe('BUFFER_ONE');
      expect((await api('DELETE', `/v1/schedules/${s.body.id}`)).status).toBe(204);
      expect((await api('GET', `/v1/schedules/${s.body.id}`)).status).toBe(404);
    },
    TIMEOUT_MS,
  );
});

describe('scheduled runs', () => {
  test(
    'a fire runs the task as a scheduled run: trigger schedule, its scheduled time, findable by run id in Temporal',
    async () => {
      const s = await api('POST', '/v1/schedules', { ...daily(), paused: true, note: 'fired by hand only' });
      expect((await api('POST', `/v1/schedules/${s.body.id}/trigger`, {})).status).toBe(202);
      const [row] = await eventually(
        () => stack.db.query(`SELECT id FROM runs WHERE schedule_id = $1`, [s.body.id]) as Promise<{ id: string }[]>,
        (rows) => rows.length === 1,
        20_000,
      );
      const run = await stack.waitForRun(row.id, undefined, 30_000, tenant.apiKey);
      expect(run).toMatchObject({ status: 'succeeded', trigger: 'schedule', scheduleId: s.body.id });
      expect(Date.parse(run.scheduledAt)).toBeLessThanOrEqual(Date.parse(run.queuedAt));
      const description = await client.workflow.getHandle(run.workflowId).describe();
      expect(description.searchAttributes).toMatchObject({ TaskRunId: [run.id], Trigger: ['schedule'], TaskId: [taskId] });
      const got = await api('GET', `/v1/schedules/${s.body.id}`);
      expect(got.body.lastRun).toMatchObject({ runId: run.id, status: 'succeeded' });
      await checkReplayAndRecord(stack.config.TEMPORAL_ADDRESS, run.workflowId, 'task-run-scheduled.json');
      expect((await api('DELETE', `/v1/schedules/${s.body.id}`)).status).toBe(204);
    },
    TIMEOUT_MS,
  );
});
