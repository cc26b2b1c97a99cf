/* A pause or resume made directly on the Temporal Schedule (as the Temporal
 * UI or CLI do) is adopted by the reconciler into the row, with a schedule
 * event naming Temporal as its cause and carrying Temporal's note; it is not
 * reverted. While the tenant is suspended, a resume made in Temporal is undone
 * instead (it must not start runs), and a pause state the API wrote to Temporal
 * in a request whose commit then failed is set back to the row's. Real API (in process, the reconciler's
 * timer off: each pass is run by the test), Temporal dev server, PostgreSQL. */
import { Client, Connection } from '@temporalio/client';
import { ScheduleReconciler } from '../../apps/api/src/schedules/schedule-reconciler';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';

let stack: TestStack;
let connection: Connection;
let client: Client;
let reconciler: ScheduleReconciler;
let tenant: { tenantId: string; apiKey: string };
let taskId: string;

beforeAll(async () => {
  stack = await startStack('schedule-external-pause', { workers: false, env: { SCHEDULE_RECONCILE_SECONDS: '0' } });
  connection = await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS });
  client = new Client({ connection, namespace: stack.config.TEMPORAL_NAMESPACE });
  reconciler = stack.app.get(ScheduleReconciler);
  tenant = await stack.createTenant(`ext-pause-${Date.now()}`);
  const task = await api('POST', '/v1/tasks', {
    name: 'ext',
    executor: 'shell',
    shell: { command: 'true' },
    retry: { maximumAttempts: 1 },
  });
  expect(task.status).toBe(201);
  taskId = task.body.id;
});
afterAll(async () => {
  await connection?.close();
  await stack?.stop();
});

function api(method: string, path: string, body?: unknown) {
  return stack.request(method, path, { body, apiKey: tenant.apiKey });
}

async function createSchedule(): Promise<{ id: string; temporalScheduleId: string }> {
  const res = await api('POST', '/v1/schedules', {
    name: `ext-${Math.random().toString(36).slice(2, 10)}`,
    taskId,
    spec: { cron: ['0 3 * * *'], timezone: 'Europe/Berlin' },
  });
  expect(res.status).toBe(201);
  return res.body;
}

const events = async (id: string) =>
  stack.db.query(`SELECT kind, note, details FROM schedule_events WHERE schedule_id = $1 ORDER BY at, id`, [id]);

/** A pass that has the lock (the start-up pass may still hold it for a moment). */
async function reconcile() {
  for (let i = 0; i < 50; i++) {
    const report = await reconciler.reconcile();
    if (report) return report;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the reconciler lock was never free');
}

describe('pause and resume made in Temporal', () => {
  test('a pause in Temporal is adopted with its note and a `temporal` event; a resume in Temporal likewise', async () => {
    const s = await createSchedule();
    const handle = client.schedule.getHandle(s.temporalScheduleId);

    await handle.pause('paused from the Temporal UI: db maintenance');
    const paused = await reconcile();
    expect(paused.adoptedPause).toContain(s.id);
    expect(paused.pauseFixed).not.toContain(s.id);
    const row = (await api('GET', `/v1/schedules/${s.id}`)).body;
    expect([row.paused, row.note]).toEqual([true, 'paused from the Temporal UI: db maintenance']);
    expect((await handle.describe()).state.paused).toBe(true);
    expect((await events(s.id)).at(-1)).toMatchObject({
      kind: 'paused',
      note: 'paused from the Temporal UI: db maintenance',
      details: { cause: 'temporal' },
    });
    // A second pass has nothing left to do: the pause stays.
    const again = await reconcile();
    expect([again.adoptedPause, again.pauseFixed, again.adoptedResume].flat()).not.toContain(s.id);
    expect((await handle.describe()).state.paused).toBe(true);

    await handle.unpause('resumed with the Temporal CLI');
    const resumed = await reconcile();
    expect(resumed.adoptedResume).toContain(s.id);
    const after = (await api('GET', `/v1/schedules/${s.id}`)).body;
    expect([after.paused, after.note]).toEqual([false, null]);
    expect((await handle.describe()).state.paused).toBe(false);
    expect((await events(s.id)).at(-1)).toMatchObject({
      kind: 'resumed',
      note: 'resumed with the Temporal CLI',
      details: { cause: 'temporal' },
    });
  });

  test('a schedule paused through the API and resumed in Temporal runs again, with the event', async () => {
    const s = await createSchedule();
    expect((await api('POST', `/v1/schedules/${s.id}/pause`, { note: 'api pause' })).status).toBe(200);
    const handle = client.schedule.getHandle(s.temporalScheduleId);
    await handle.unpause('ops resumed it');
    expect((await reconcile()).adoptedResume).toContain(s.id);
    expect((await api('GET', `/v1/schedules/${s.id}`)).body.paused).toBe(false);
    expect((await handle.describe()).state.paused).toBe(false);
  });

  test('while the tenant is suspended, a resume in Temporal is undone and the row keeps its state', async () => {
    const s = await createSchedule();
    const suspend = await stack.request('PATCH', `/v1/tenants/${tenant.tenantId}`, { body: { status: 'suspended' } });
    expect(suspend.status).toBe(200);
    try {
      const handle = client.schedule.getHandle(s.temporalScheduleId);
      expect((await handle.describe()).state.paused).toBe(true);
      await handle.unpause('resumed in the UI during the suspension');
      const report = await reconcile();
      expect(report.adoptedResume).not.toContain(s.id);
      expect(report.pauseFixed).toContain(s.id);
      const d = await handle.describe();
      expect([d.state.paused, d.state.note]).toEqual([true, 'paused: tenant suspended']);
      const [row] = await stack.db.query(`SELECT paused FROM schedules WHERE id = $1`, [s.id]);
      expect(row.paused).toBe(false);
      expect((await events(s.id)).at(-1)).toMatchObject({
        kind: 'repaired',
        note: 'paused again: resumed in Temporal, but paused: tenant suspended',
      });
    } finally {
      expect((await stack.request('PATCH', `/v1/tenants/${tenant.tenantId}`, { body: { status: 'active' } })).status).toBe(200);
    }
    // Active again: the schedule runs, and a pass finds nothing to adopt.
    expect((await client.schedule.getHandle(s.temporalScheduleId).describe()).state.paused).toBe(false);
    const report = await reconcile();
    expect([report.adoptedPause, report.adoptedResume, report.pauseFixed].flat()).not.toContain(s.id);
  });

  test('a pause or resume the API made in Temporal but failed to commit is reverted to the row, not adopted', async () => {
    const s = await createSchedule();
    const handle = client.schedule.getHandle(s.temporalScheduleId);
    // The request's last write (its pause or resume event) fails, after Temporal took the change: the commit fails.
    const failEvents = () =>
      stack.db.query(
        `CREATE OR REPLACE FUNCTION fail_schedule_event() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.schedule_id = '${s.id}' AND NEW.kind IN ('paused', 'resumed') THEN RAISE EXCEPTION 'injected'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER fail_schedule_event BEFORE INSERT ON schedule_events FOR EACH ROW EXECUTE FUNCTION fail_schedule_event()`,
      );
    const allowEvents = () => stack.db.query(`DROP TRIGGER IF EXISTS fail_schedule_event ON schedule_events`);
    const rowPaused = async () => (await stack.db.query(`SELECT paused FROM schedules WHERE id = $1`, [s.id]))[0].paused;
    try {
      await failEvents();
      expect((await api('POST', `/v1/schedules/${s.id}/pause`, { note: 'never committed' })).status).toBe(500);
      expect(await rowPaused()).toBe(false);
      // The failed request did reach Temporal.
      expect((await handle.describe()).state).toMatchObject({ paused: true, note: 'never committed' });
      const report = await reconcile();
      expect(report.adoptedPause).not.toContain(s.id);
      expect(report.pauseFixed).toContain(s.id);
      expect(await rowPaused()).toBe(false);
      expect((await handle.describe()).state.paused).toBe(false);
      expect((await events(s.id)).at(-1)).toMatchObject({ kind: 'repaired', note: 'pause state set to running' });

      await allowEvents();
      expect((await api('POST', `/v1/schedules/${s.id}/pause`, { note: 'api pause' })).status).toBe(200);
      await failEvents();
      expect((await api('POST', `/v1/schedules/${s.id}/resume`, {})).status).toBe(500);
      expect(await rowPaused()).toBe(true);
      expect((await handle.describe()).state.paused).toBe(false);
      const second = await reconcile();
      expect(second.adoptedResume).not.toContain(s.id);
      expect(second.pauseFixed).toContain(s.id);
      expect(await rowPaused()).toBe(true);
      expect((await handle.describe()).state).toMatchObject({ paused: true, note: 'api pause' });
      expect((await events(s.id)).at(-1)).toMatchObject({
        kind: 'repaired',
        note: 'paused again: api pause (Temporal held a resume the API wrote but did not commit)',
      });
    } finally {
      await allowEvents();
    }
    // A change made in Temporal afterwards is still adopted (the memo followed the repairs).
    await handle.unpause('resumed in the UI');
    expect((await reconcile()).adoptedResume).toContain(s.id);
    await handle.pause('paused in the UI');
    expect((await reconcile()).adoptedPause).toContain(s.id);
    expect((await api('GET', `/v1/schedules/${s.id}`)).body).toMatchObject({ paused: true, note: 'paused in the UI' });
  });

  test('a schedule Temporal holds in the old encoding (Temporal cron strings) is re-sent as calendar rules', async () => {
    const res = await api('POST', '/v1/schedules', { name: `old-${Date.now()}`, taskId, spec: { cron: ['0 10 * * MON#2'] } });
    expect(res.status).toBe(201);
    const handle = client.schedule.getHandle(res.body.temporalScheduleId);
    // What the product sent before: the cron string as is, and a memo without specEncoding.
    await handle.update((prev) => {
      const memo = { ...((prev.action as { memo?: Record<string, unknown> }).memo ?? {}) };
      delete memo.specEncoding;
      return { ...prev, spec: { cronExpressions: ['0 10 * * MON#2'], timezone: 'UTC' }, action: { ...prev.action, memo } } as never;
    });
    const mondays = async () =>
      (await api('GET', `/v1/schedules/${res.body.id}/preview?count=3&from=2027-01-01T00:00:00Z`)).body.fires.map(
        (f: { at: string }) => f.at,
      );
    // Temporal read everything after `#` as a comment: every Monday.
    expect(await mondays()).toEqual(['2027-01-04T10:00:00.000Z', '2027-01-11T10:00:00.000Z', '2027-01-18T10:00:00.000Z']);
    expect((await reconcile()).updated).toContain(res.body.id);
    expect(await mondays()).toEqual(['2027-01-11T10:00:00.000Z', '2027-02-08T10:00:00.000Z', '2027-03-08T10:00:00.000Z']);
    expect((await events(res.body.id)).at(-1)).toMatchObject({ kind: 'repaired', note: expect.stringMatching(/^updated: spec re-sent/) });
  });
});
