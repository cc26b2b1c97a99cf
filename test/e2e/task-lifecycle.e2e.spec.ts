/* Task lifecycle over HTTP — PATCH and versions, ETag and If-Match, disable and enable, delete with
 * and without cascade — against the real API, Temporal dev server, workers and PostgreSQL. Every
 * count is scoped to this suite's own tenants; schedules are deleted by the test that made them. */
import { randomBytes } from 'node:crypto';
import { Client, Connection, ScheduleNotFoundError } from '@temporalio/client';
import { FINAL_RUN_STATUSES } from '@task-scheduler/contracts';
import { ScheduleReconciler } from '../../apps/api/src/schedules/schedule-reconciler';
import { startStack } from '../support/stack';
import { eventually } from '../support/eventually';
import type { TestStack } from '../support/stack';

let stack: TestStack;
let connection: Connection;
let client: Client;
let a: { tenantId: string; apiKey: string };
let b: { tenantId: string; apiKey: string };

const TIMEOUT_MS = 120_000;

beforeAll(async () => {
  // The reconciler's timer is off: a pass runs only when a test asks for one, so none races the test's own Temporal updates.
  stack = await startStack('task-lifecycle', { env: { SCHEDULE_RECONCILE_SECONDS: '0' } });
  connection = await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS });
  client = new Client({ connection });
  a = await stack.createTenant(`life-a-${randomBytes(3).toString('hex')}`, { maxConcurrentRuns: 20 });
  b = await stack.createTenant(`life-b-${randomBytes(3).toString('hex')}`);
});
afterAll(async () => {
  await connection?.close();
  await stack?.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One reconciler pass (retried while the start-up pass still holds its lock). */
async function reconcile(): Promise<void> {
  const reconciler = stack.app.get(ScheduleReconciler);
  for (let i = 0; i < 50; i++) {
    if (await reconciler.reconcile()) return;
    await sleep(100);
  }
  throw new Error('the reconciler lock was never free');
}

/** The database's clock now: event times are compared with the database's, never the test's, clock. */
async function dbNow(): Promise<number> {
  const [{ now }] = await stack.db.query(`SELECT clock_timestamp() AS now`);
  return (now as Date).getTime();
}

/** When the task's version `version` was written (under the task's row lock). */
async function versionWrittenAt(taskId: string, version: number): Promise<number> {
  const [row] = await stack.db.query(`SELECT created_at FROM task_versions WHERE task_id = $1 AND version = $2`, [taskId, version]);
  return (row.created_at as Date).getTime();
}

/** The schedule's fire records from `from` (the database's clock, ms) until now. */
async function firesOf(scheduleId: string, from: number): Promise<any[]> {
  const res = await api('GET', `/v1/schedules/${scheduleId}/fires?from=${new Date(from).toISOString()}`);
  expect([res.status, res.body.error]).toEqual([200, undefined]);
  return res.body.items;
}

function api(method: string, path: string, body?: unknown, headers?: Record<string, string>, apiKey = a.apiKey) {
  return stack.request(method, path, { body, apiKey, headers });
}

async function createTask(body: Record<string, unknown>): Promise<any> {
  const res = await api('POST', '/v1/tasks', { executor: 'shell', timeoutSeconds: 60, retry: { maximumAttempts: 1 }, ...body });
  expect([res.status, res.body.error, res.headers.get('etag')]).toEqual([201, undefined, '"1"']);
  return res.body;
}

async function versionsOf(taskId: string): Promise<any[]> {
  const res = await api('GET', `/v1/tasks/${taskId}/versions?limit=100`);
  expect(res.status).toBe(200);
  return res.body.items;
}

function temporalSchedule(scheduleId: string) {
  return client.schedule.getHandle(`${stack.config.TASK_QUEUE_PREFIX}.schedule.${scheduleId}`);
}

/** The schedule's runs as the API lists them, oldest fire first. */
async function scheduledRuns(taskId: string): Promise<any[]> {
  const res = await api('GET', `/v1/runs?taskId=${taskId}&trigger=schedule&limit=200`);
  expect(res.status).toBe(200);
  return [...res.body.items].sort((x: any, y: any) => Date.parse(x.scheduledAt) - Date.parse(y.scheduledAt));
}

test(
  'PATCH validates like create, makes a version per effective change, keeps secrets, and lists who changed what',
  async () => {
    const task = await createTask({ name: 'versioned', shell: { script: 'echo v1', secretEnv: { TOKEN: 'first-secret' } } });
    expect(task.version).toBe(1);
    const read = await api('GET', `/v1/tasks/${task.id}`);
    expect(read.headers.get('etag')).toBe('"1"');
    // Only the task routes send an ETag (Express's automatic weak ETag and its 304s are off).
    const listed = await api('GET', '/v1/tasks', undefined, { 'if-none-match': '*' });
    expect([listed.status, listed.headers.get('etag')]).toEqual([200, null]);
    // Strong comparison: a weak tag of the current version does not match.
    const weak = await api('PATCH', `/v1/tasks/${task.id}`, { description: 'weak' }, { 'if-match': 'W/"1"' });
    expect([weak.status, weak.body.error?.code]).toEqual([412, 'TASK_VERSION_MISMATCH']);

    const described = await api('PATCH', `/v1/tasks/${task.id}`, { description: 'nightly export' }, { 'if-match': '"1"' });
    expect([described.status, described.body.error]).toEqual([200, undefined]);
    expect(described.body).toMatchObject({ version: 2, description: 'nightly export', shell: { script: 'echo v1' } });
    expect(described.headers.get('etag')).toBe('"2"');

    // Nothing changes: no version, the same ETag.
    const same = await api('PATCH', `/v1/tasks/${task.id}`, { description: 'nightly export', tags: [] });
    expect([same.status, same.body.version, same.headers.get('etag')]).toEqual([200, 2, '"2"']);

    // A stale If-Match: 412 naming the current version, nothing written.
    const stale = await api('PATCH', `/v1/tasks/${task.id}`, { description: 'lost update' }, { 'if-match': '"1"' });
    expect([stale.status, stale.body.error.code]).toEqual([412, 'TASK_VERSION_MISMATCH']);
    expect(stale.body.error.message).toContain('version 2');
    expect(stale.body.error.details).toEqual([expect.objectContaining({ field: 'if-match', message: expect.any(String) })]);
    expect((await api('GET', `/v1/tasks/${task.id}`)).body.description).toBe('nightly export');

    // The same rules as create; each refusal leaves the task as it was.
    const refusals: [unknown, number, string][] = [
      [{ shell: { command: 'echo', script: 'echo' } }, 400, 'VALIDATION_FAILED'],
      [{ http: { method: 'GET', url: 'https://example.com' } }, 400, 'VALIDATION_FAILED'],
      [{ executor: 'http' }, 400, 'VALIDATION_FAILED'],
      [{ shell: { script: 'echo', args: ['x'] } }, 400, 'VALIDATION_FAILED'],
      [{ shell: { script: 'echo', secretEnv: { TOKEN: '***' } } }, 400, 'VALIDATION_FAILED'],
      [{ retry: { initialIntervalSeconds: 100, maximumIntervalSeconds: 10 } }, 400, 'VALIDATION_FAILED'],
      [{ timeoutSeconds: 0 }, 400, 'VALIDATION_FAILED'],
      [{ name: null }, 400, 'VALIDATION_FAILED'],
      [{ enabled: false }, 400, 'VALIDATION_FAILED'],
      [{ unknownField: 1 }, 400, 'VALIDATION_FAILED'],
      [{ shell: { script: 'echo', limits: { memoryMb: 10_000_000 } } }, 400, 'VALIDATION_FAILED'],
    ];
    for (const [body, status, code] of refusals) {
      const res = await api('PATCH', `/v1/tasks/${task.id}`, body);
      expect([JSON.stringify(body), res.status, res.body.error?.code]).toEqual([JSON.stringify(body), status, code]);
    }
    const other = await createTask({ name: 'versioned-other', shell: { command: 'true' } });
    const taken = await api('PATCH', `/v1/tasks/${task.id}`, { name: other.name });
    expect([taken.status, taken.body.error.code]).toEqual([409, 'TASK_NAME_TAKEN']);
    expect((await api('GET', `/v1/tasks/${task.id}`)).body.version).toBe(2);

    // A new executor block without secretEnv keeps the stored secret values.
    const [{ secrets: sealedBefore }] = await stack.db.query(`SELECT secrets FROM tasks WHERE id = $1`, [task.id]);
    const scripted = await api('PATCH', `/v1/tasks/${task.id}`, { shell: { script: 'echo v2' } });
    expect(scripted.body).toMatchObject({ version: 3, shell: { script: 'echo v2', secretEnv: { TOKEN: '***' } } });
    const [{ secrets: sealedAfter }] = await stack.db.query(`SELECT secrets FROM tasks WHERE id = $1`, [task.id]);
    expect(sealedAfter).toBe(sealedBefore);
    // The same secret name with another value is a change the names-only definition cannot show: it is listed.
    const rotated = await api('PATCH', `/v1/tasks/${task.id}`, { shell: { script: 'echo v2', secretEnv: { TOKEN: 'second-secret' } } });
    expect(rotated.body.version).toBe(4);
    const resent = await api('PATCH', `/v1/tasks/${task.id}`, { shell: { script: 'echo v2', secretEnv: { TOKEN: 'second-secret' } } });
    expect(resent.body.version).toBe(4);
    const switched = await api('PATCH', `/v1/tasks/${task.id}`, {
      executor: 'http',
      http: { method: 'POST', url: 'https://hooks.example.com/x', secretHeaders: { Authorization: 'Bearer third-secret' } },
    });
    expect(switched.body).toMatchObject({ version: 5, executor: 'http', http: { secretHeaders: { Authorization: '***' } } });
    expect(switched.body.shell).toBeUndefined();

    const versions = await versionsOf(task.id);
    expect(versions.map((v) => [v.version, v.action, v.changedFields])).toEqual([
      [5, 'update', ['executor', 'http', 'shell']],
      [4, 'update', ['shell.secretEnv']],
      [3, 'update', ['shell.script']],
      [2, 'update', ['description']],
      [1, 'create', expect.arrayContaining(['name', 'executor', 'shell', 'retry', 'enabled'])],
    ]);
    const [{ prefix }] = await stack.db.query(`SELECT prefix FROM api_keys WHERE tenant_id = $1`, [a.tenantId]);
    for (const v of versions) {
      expect(v.actor).toEqual({ apiKeyId: expect.any(String), name: `key:${prefix}` });
      expect(Number.isNaN(Date.parse(v.changedAt))).toBe(false);
    }
    expect(versions[2].definition).toMatchObject({
      description: 'nightly export',
      shell: { script: 'echo v2', secretEnv: { TOKEN: '***' } },
    });
    expect(versions[4].definition).toMatchObject({ shell: { script: 'echo v1' } });
    // Newest first by write time too, and no snapshot holds a secret value.
    const times = versions.map((v) => Date.parse(v.changedAt));
    expect([...times].sort((x, y) => y - x)).toEqual(times);
    const stored: { definition: unknown }[] = await stack.db.query(`SELECT definition FROM task_versions WHERE task_id = $1`, [task.id]);
    expect(stored).toHaveLength(5);
    for (const secret of ['first-secret', 'second-secret', 'third-secret']) expect(JSON.stringify(stored)).not.toContain(secret);

    // Paginated like every list.
    const page1 = await api('GET', `/v1/tasks/${task.id}/versions?limit=2`);
    const page2 = await api('GET', `/v1/tasks/${task.id}/versions?limit=2&cursor=${page1.body.nextCursor}`);
    const page3 = await api('GET', `/v1/tasks/${task.id}/versions?limit=2&cursor=${page2.body.nextCursor}`);
    expect([...page1.body.items, ...page2.body.items, ...page3.body.items].map((v: any) => v.version)).toEqual([5, 4, 3, 2, 1]);
    expect(page3.body.nextCursor).toBeNull();

    const audit: { action: string; n: number }[] = await stack.db.query(
      `SELECT action, count(*)::int AS n FROM audit_events WHERE target_id = $1 GROUP BY action ORDER BY action`,
      [task.id],
    );
    expect(audit).toEqual([
      { action: 'task.create', n: 1 },
      { action: 'task.update', n: 4 },
    ]);
  },
  TIMEOUT_MS,
);

test(
  'concurrent PATCHes serialise: with one If-Match exactly one wins, without one every change gets its own version',
  async () => {
    const task = await createTask({ name: 'contended', shell: { command: 'true' } });
    for (let round = 0; round < 3; round++) {
      const etag = `"${1 + round}"`;
      const answers = await Promise.all(
        ['left', 'right'].map((side) => api('PATCH', `/v1/tasks/${task.id}`, { description: `${side} ${round}` }, { 'if-match': etag })),
      );
      expect(answers.map((r) => r.status).sort()).toEqual([200, 412]);
      expect(answers.find((r) => r.status === 412)?.body.error.code).toBe('TASK_VERSION_MISMATCH');
    }
    const many = await Promise.all([0, 1, 2, 3, 4].map((i) => api('PATCH', `/v1/tasks/${task.id}`, { priority: i + 1 })));
    expect(many.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(many.map((r) => r.body.version).sort()).toEqual([5, 6, 7, 8, 9]);
    const versions = await versionsOf(task.id);
    expect(versions.map((v) => v.version)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1]);
    // Each version's snapshot is the state after exactly its own change.
    for (const r of many) expect(versions.find((v) => v.version === r.body.version).definition.priority).toBe(r.body.priority);
  },
  TIMEOUT_MS,
);

test(
  'a run in flight keeps the version it started with; the next run gets the new one',
  async () => {
    const task = await createTask({ name: 'in-flight', shell: { script: 'sleep 3; echo v1' } });
    const first = await api('POST', `/v1/tasks/${task.id}/runs`);
    expect([first.status, first.body.taskVersion]).toEqual([202, 1]);
    await stack.waitForRun(first.body.id, (r) => r.status === 'running', 30_000, a.apiKey);
    const patched = await api('PATCH', `/v1/tasks/${task.id}`, { shell: { script: 'echo v2' } });
    expect(patched.body.version).toBe(2);
    const second = await api('POST', `/v1/tasks/${task.id}/runs`);
    expect(second.body.taskVersion).toBe(2);
    const [done1, done2] = await Promise.all(
      [first.body.id, second.body.id].map((id) => stack.waitForRun(id, (r) => FINAL_RUN_STATUSES.includes(r.status), 60_000, a.apiKey)),
    );
    expect([done1.status, done1.stdout, done1.taskVersion]).toEqual(['succeeded', 'v1\n', 1]);
    expect([done2.status, done2.stdout, done2.taskVersion]).toEqual(['succeeded', 'v2\n', 2]);
    // A retry of the old run runs the task as it is now.
    const retried = await api('POST', `/v1/runs/${first.body.id}/retry`);
    expect(retried.body.taskVersion).toBe(2);
    const done3 = await stack.waitForRun(retried.body.id, (r) => FINAL_RUN_STATUSES.includes(r.status), 60_000, a.apiKey);
    expect([done3.stdout, done3.taskVersion]).toEqual(['v2\n', 2]);
  },
  TIMEOUT_MS,
);

test(
  'schedules fire the new version, hold while the task is disabled (fires reported task_disabled), resume on enable',
  async () => {
    const task = await createTask({ name: 'scheduled', shell: { script: 'echo v1' } });
    const created = await api('POST', '/v1/schedules', { name: 'every-2s', taskId: task.id, spec: { intervals: [{ everySeconds: 2 }] } });
    expect([created.status, created.body.error]).toEqual([201, undefined]);
    const sid = created.body.id;

    const v1 = await eventually(
      () => scheduledRuns(task.id),
      (rs) => rs.some((r) => r.status === 'succeeded'),
      30_000,
    );
    expect(v1.every((r) => r.taskVersion === 1)).toBe(true);

    expect((await api('PATCH', `/v1/tasks/${task.id}`, { shell: { script: 'echo v2' } })).body.version).toBe(2);
    const patchAnswered = await dbNow(); // Temporal's action had the new version before the PATCH answered
    expect(((await temporalSchedule(sid).describe()).action as any).memo).toMatchObject({ taskVersion: 2 });
    const withV2 = await eventually(
      () => scheduledRuns(task.id),
      (rs) => rs.some((r) => r.taskVersion === 2 && r.status === 'succeeded'),
      60_000,
    );
    const firstV2 = withV2.find((r) => r.taskVersion === 2);
    expect((await stack.waitForRun(firstV2.id, undefined, 30_000, a.apiKey)).stdout).toBe('v2\n');
    // Fires after the change never ran the old version.
    for (const r of withV2)
      if (Date.parse(r.scheduledAt) > patchAnswered) expect([r.scheduledAt, r.taskVersion]).toEqual([r.scheduledAt, 2]);

    // Disable: manual runs and schedule triggers refused; the schedule is held paused in Temporal, its own flag unchanged.
    const disabled = await api('POST', `/v1/tasks/${task.id}/disable`, undefined, { 'if-match': '"2"' });
    expect([disabled.status, disabled.body.enabled, disabled.body.version, disabled.headers.get('etag')]).toEqual([200, false, 3, '"3"']);
    // Once the disable has answered, every fire that reaches a worker finds the task disabled (RunRecorder.ensureRun).
    const disabledAt = await dbNow();
    const paused = await temporalSchedule(sid).describe();
    expect([paused.state.paused, paused.state.note]).toEqual([true, 'paused: task disabled']);
    expect((await api('GET', `/v1/schedules/${sid}`)).body.paused).toBe(false);
    const manual = await api('POST', `/v1/tasks/${task.id}/runs`);
    expect([manual.status, manual.body.error.code]).toEqual([422, 'TASK_DISABLED']);
    const fired = await api('POST', `/v1/schedules/${sid}/trigger`, {});
    expect([fired.status, fired.body.error.code]).toEqual([422, 'TASK_DISABLED']);
    // Disabling again changes nothing; a stale If-Match is refused.
    expect((await api('POST', `/v1/tasks/${task.id}/disable`)).body.version).toBe(3);
    expect((await api('POST', `/v1/tasks/${task.id}/enable`, undefined, { 'if-match': '"2"' })).status).toBe(412);

    // Someone resumes the schedule in the Temporal UI before the reconciler holds it again: its fires reach the worker,
    // which runs nothing and records them cancelled, task_disabled; a reconciler pass pauses the schedule again.
    await temporalSchedule(sid).unpause('resumed in the Temporal UI');
    const reached = await eventually(
      () => scheduledRuns(task.id),
      (rs) => rs.filter((r) => Date.parse(r.scheduledAt) > disabledAt).length >= 2,
      60_000,
    );
    await reconcile();
    expect((await temporalSchedule(sid).describe()).state.paused).toBe(true);
    const reachedUntil = Math.max(...reached.map((r) => Date.parse(r.scheduledAt)));

    // /fires reports every fire of the disabled period as missed with reason task_disabled (a fire is listed once 5 s old),
    // those that reached the worker with the run that recorded them.
    const disabledFires = await eventually(
      () => firesOf(sid, disabledAt),
      (fs) => fs.filter((f) => Date.parse(f.scheduledAt) > reachedUntil).length >= 2,
      60_000,
    );
    for (const f of disabledFires) expect([f.scheduledAt, f.outcome, f.reason]).toEqual([f.scheduledAt, 'missed', 'task_disabled']);
    // Held paused again for two fires: every fire that reached the worker is recorded by now.
    const refused = (await scheduledRuns(task.id)).filter((r) => Date.parse(r.scheduledAt) > disabledAt);
    expect(refused.length).toBeGreaterThanOrEqual(2);
    for (const r of refused) {
      expect([r.scheduledAt, r.status, r.attemptCount]).toEqual([r.scheduledAt, 'cancelled', 0]);
      expect(r.error).toMatch(/^task_disabled: /);
    }
    const [{ n: attemptRows }] = await stack.db.query(`SELECT count(*)::int AS n FROM run_attempts WHERE run_id = ANY($1)`, [
      refused.map((r) => r.id),
    ]);
    expect(attemptRows).toBe(0);
    expect(
      disabledFires
        .filter((f) => f.runId !== null)
        .map((f) => f.runId)
        .sort(),
    ).toEqual(refused.map((r) => r.id).sort());

    const enabled = await api('POST', `/v1/tasks/${task.id}/enable`);
    expect([enabled.status, enabled.body.enabled, enabled.body.version]).toEqual([200, true, 4]);
    const enabledAt = await versionWrittenAt(task.id, 4);
    expect((await temporalSchedule(sid).describe()).state.paused).toBe(false);
    const afterEnable = await eventually(
      () => scheduledRuns(task.id),
      (rs) => rs.some((r) => Date.parse(r.scheduledAt) > enabledAt && r.status === 'succeeded'),
      60_000,
    );
    // No fire of the disabled period ran; fires after the enable run version 4.
    const ranWhileDisabled = afterEnable.filter(
      (r) => Date.parse(r.scheduledAt) > disabledAt && Date.parse(r.scheduledAt) < enabledAt && r.status !== 'cancelled',
    );
    expect(ranWhileDisabled).toEqual([]);
    expect(afterEnable.filter((r) => Date.parse(r.scheduledAt) > enabledAt).every((r) => r.taskVersion === 4)).toBe(true);

    // The disabled period is in the schedule's events.
    const events: { kind: string; cause: string; at: Date }[] = await stack.db.query(
      `SELECT kind, details->>'cause' AS cause, at FROM schedule_events WHERE schedule_id = $1 AND kind IN ('paused', 'resumed') ORDER BY at`,
      [sid],
    );
    expect(events.map((e) => [e.kind, e.cause])).toEqual(
      expect.arrayContaining([
        ['paused', 'task_disabled'],
        ['resumed', 'task_disabled'],
      ]),
    );
    // Fires after the enable ran again.
    const later = await eventually(
      () => firesOf(sid, enabledAt),
      (fs) => fs.some((f: any) => f.outcome === 'ran'),
      60_000,
    );
    expect(later.some((f: any) => f.outcome === 'ran')).toBe(true);

    // A resync that did not reach Temporal (here: the action's task version set back by hand) is repaired by the reconciler.
    await temporalSchedule(sid).update((prev) => ({
      ...prev,
      action: { ...(prev.action as any), memo: { ...((prev.action as any).memo ?? {}), taskVersion: 1 } },
    }));
    await reconcile();
    expect(((await temporalSchedule(sid).describe()).action as any).memo?.taskVersion).toBe(4);
    const repaired: { note: string }[] = await stack.db.query(
      `SELECT note FROM schedule_events WHERE schedule_id = $1 AND kind = 'repaired' ORDER BY at, id`,
      [sid],
    );
    // The pause undone in the Temporal UI first, then the stale task version.
    expect(repaired.map((e) => e.note)).toEqual([
      expect.stringContaining('resumed in Temporal, but paused: task disabled'),
      expect.stringContaining('task version 1'),
    ]);

    // Delete: refused while the schedule uses the task, naming it; with cascade the schedule goes too, in Temporal as well.
    const inUse = await api('DELETE', `/v1/tasks/${task.id}`);
    expect([inUse.status, inUse.body.error.code]).toEqual([409, 'TASK_IN_USE']);
    expect(inUse.body.error.details).toEqual([
      expect.objectContaining({ scheduleId: sid, scheduleName: 'every-2s', message: expect.any(String) }),
    ]);
    expect(inUse.body.error.message).toContain('every-2s');
    const cascaded = await api('DELETE', `/v1/tasks/${task.id}?cascade=true`, undefined, { 'if-match': '"4"' });
    expect([cascaded.status, cascaded.body]).toEqual([200, { id: task.id, deletedSchedules: [{ id: sid, name: 'every-2s' }] }]);
    await expect(temporalSchedule(sid).describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
    expect((await api('GET', `/v1/schedules/${sid}`)).status).toBe(404);

    // Gone for reads, changes and triggers; its runs stay readable; its name is free again.
    for (const [method, path] of [
      ['GET', `/v1/tasks/${task.id}`],
      ['PATCH', `/v1/tasks/${task.id}`],
      ['GET', `/v1/tasks/${task.id}/versions`],
      ['POST', `/v1/tasks/${task.id}/runs`],
      ['POST', `/v1/tasks/${task.id}/disable`],
      ['DELETE', `/v1/tasks/${task.id}`],
    ]) {
      const res = await api(method, path, method === 'PATCH' ? { description: 'x' } : undefined);
      expect([method, path, res.status, res.body.error?.code]).toEqual([method, path, 404, 'TASK_NOT_FOUND']);
    }
    for (const r of afterEnable) {
      await stack.waitForRun(r.id, (x) => FINAL_RUN_STATUSES.includes(x.status), 30_000, a.apiKey);
      expect((await api('GET', `/v1/runs/${r.id}`)).body).toMatchObject({ id: r.id, taskId: task.id });
    }
    const reborn = await createTask({ name: 'scheduled', shell: { command: 'true' } });
    expect(reborn.id).not.toBe(task.id);

    const audit: { action: string }[] = await stack.db.query(
      `SELECT action FROM audit_events WHERE tenant_id = $1 AND target_id = ANY($2) AND outcome = 'success' ORDER BY created_at, action`,
      [a.tenantId, [task.id, sid]],
    );
    expect(audit.map((e) => e.action)).toEqual([
      'task.create',
      'schedule.create',
      'task.update',
      'task.disable',
      'task.enable',
      'schedule.delete',
      'task.delete',
    ]);
  },
  TIMEOUT_MS,
);

test(
  'a plain delete frees the name; another tenant cannot read, change, disable or delete the task',
  async () => {
    const task = await createTask({ name: 'private', shell: { command: 'true' } });
    for (const [method, path, body] of [
      ['GET', `/v1/tasks/${task.id}`, undefined],
      ['GET', `/v1/tasks/${task.id}/versions`, undefined],
      ['PATCH', `/v1/tasks/${task.id}`, { description: 'hijacked' }],
      ['POST', `/v1/tasks/${task.id}/disable`, undefined],
      ['POST', `/v1/tasks/${task.id}/enable`, undefined],
      ['DELETE', `/v1/tasks/${task.id}?cascade=true`, undefined],
    ] as const) {
      const res = await api(method, path, body, undefined, b.apiKey);
      expect([method, path, res.status, res.body.error?.code]).toEqual([method, path, 404, 'TASK_NOT_FOUND']);
    }
    const untouched = await api('GET', `/v1/tasks/${task.id}`);
    expect([untouched.body.version, untouched.body.description, untouched.body.enabled]).toEqual([1, null, true]);

    // null clears description and alerts, and nothing else.
    const hook = { webhookUrl: 'https://alerts.example.com/hook' };
    const set = await api('PATCH', `/v1/tasks/${task.id}`, { description: 'temporary', alerts: hook });
    expect(set.body).toMatchObject({ version: 2, description: 'temporary', alerts: hook });
    const cleared = await api('PATCH', `/v1/tasks/${task.id}`, { description: null, alerts: null });
    expect(cleared.body).toMatchObject({ version: 3, description: null, alerts: null });
    for (const field of ['metadata', 'tags', 'retry', 'shell', 'executor', 'timeoutSeconds']) {
      const res = await api('PATCH', `/v1/tasks/${task.id}`, { [field]: null });
      expect([field, res.status, res.body.error?.code]).toEqual([field, 400, 'VALIDATION_FAILED']);
    }

    const run = await api('POST', `/v1/tasks/${task.id}/runs`);
    await stack.waitForRun(run.body.id, (r) => FINAL_RUN_STATUSES.includes(r.status), 30_000, a.apiKey);
    const deleted = await api('DELETE', `/v1/tasks/${task.id}`);
    expect([deleted.status, deleted.body]).toEqual([200, { id: task.id, deletedSchedules: [] }]);
    expect((await api('GET', `/v1/runs/${run.body.id}`)).body).toMatchObject({ id: run.body.id, status: 'succeeded', taskVersion: 3 });
    expect((await api('POST', `/v1/runs/${run.body.id}/retry`)).status).toBe(404);
    const again = await createTask({ name: 'private', shell: { command: 'true' } });
    expect(again.version).toBe(1);
    expect((await versionsOf(again.id)).map((v) => v.version)).toEqual([1]);
  },
  TIMEOUT_MS,
);

test(
  'changes need tasks:write, a cascade also schedules:write; a schedule created during a delete is never left behind',
  async () => {
    const newKey = async (body: Record<string, unknown>): Promise<string> => {
      const res = await api('POST', '/v1/api-keys', { name: `k-${randomBytes(3).toString('hex')}`, ...body });
      expect(res.status).toBe(201);
      return res.body.key;
    };
    const readonly = await newKey({ role: 'readonly' });
    const tasksOnly = await newKey({ role: 'custom', permissions: ['tasks:read', 'tasks:write'] });
    const task = await createTask({ name: 'guarded', shell: { command: 'true' } });
    expect((await api('GET', `/v1/tasks/${task.id}/versions`, undefined, undefined, readonly)).status).toBe(200);
    for (const [method, path] of [
      ['PATCH', `/v1/tasks/${task.id}`],
      ['POST', `/v1/tasks/${task.id}/disable`],
      ['DELETE', `/v1/tasks/${task.id}`],
    ]) {
      const res = await api(method, path, method === 'PATCH' ? { priority: 3 } : undefined, undefined, readonly);
      expect([method, res.status, res.body.error.code]).toEqual([method, 403, 'FORBIDDEN']);
    }
    const s = await api('POST', '/v1/schedules', { name: 'guarded-s', taskId: task.id, spec: { cron: ['0 0 1 1 *'] } });
    expect(s.status).toBe(201);
    // Without schedules:read the refusal gives the count, not the schedules' names or ids.
    const hidden = await api('DELETE', `/v1/tasks/${task.id}`, undefined, undefined, tasksOnly);
    expect([hidden.status, hidden.body.error.code, hidden.body.error.details]).toEqual([
      409,
      'TASK_IN_USE',
      [expect.objectContaining({ field: 'schedules', count: 1, message: expect.any(String) })],
    ]);
    for (const secret of [s.body.id, 'guarded-s']) expect(JSON.stringify(hidden.body)).not.toContain(secret);
    const named = await api('DELETE', `/v1/tasks/${task.id}`);
    expect(named.body.error.details).toEqual([expect.objectContaining({ scheduleId: s.body.id, scheduleName: 'guarded-s' })]);
    const cascade = await api('DELETE', `/v1/tasks/${task.id}?cascade=true`, undefined, undefined, tasksOnly);
    expect([cascade.status, cascade.body.error.code]).toEqual([403, 'FORBIDDEN']);
    expect((await api('GET', `/v1/schedules/${s.body.id}`)).status).toBe(200);
    expect((await api('DELETE', `/v1/tasks/${task.id}?cascade=yes`)).status).toBe(400);
    expect((await api('DELETE', `/v1/tasks/${task.id}?cascade=true`)).body.deletedSchedules).toEqual([
      { id: s.body.id, name: 'guarded-s' },
    ]);

    // A schedule create racing a plain delete: either the schedule exists and the delete was refused, or the task is gone and
    // the create was refused; never a schedule of a deleted task.
    for (let round = 0; round < 4; round++) {
      const t = await createTask({ name: `racing-${round}`, shell: { command: 'true' } });
      const [created, deleted] = await Promise.all([
        api('POST', '/v1/schedules', { name: `racing-${round}`, taskId: t.id, spec: { cron: ['0 0 1 1 *'] } }),
        api('DELETE', `/v1/tasks/${t.id}`),
      ]);
      const outcome = [created.status, deleted.status];
      expect([
        [201, 409],
        [422, 200],
      ]).toContainEqual(outcome);
      const [{ n }] = await stack.db.query(
        `SELECT count(*)::int AS n FROM schedules s JOIN tasks t ON t.id = s.task_id
          WHERE s.task_id = $1 AND s.deleted_at IS NULL AND t.deleted_at IS NOT NULL`,
        [t.id],
      );
      expect(n).toBe(0);
      if (created.status === 201) expect((await api('DELETE', `/v1/schedules/${created.body.id}`)).status).toBe(204);
    }
  },
  TIMEOUT_MS,
);

test(
  'manual runs racing a delete or a disable: each run was queued before the change, every later one is refused',
  async () => {
    for (const change of ['delete', 'disable'] as const) {
      const task = await createTask({ name: `race-${change}`, shell: { command: 'true' } });
      const triggers: Promise<{ status: number; code?: string; id?: string; afterAnswer: boolean }>[] = [];
      let changeAnswer: Promise<number> | undefined;
      let answered = false;
      // At most 20 triggers 15 ms apart; the change goes out after the fourth; two more go out once it has answered.
      for (let i = 0, sentAfter = 0; i < 20 && sentAfter < 2; i++) {
        const afterAnswer = answered;
        if (afterAnswer) sentAfter++;
        triggers.push(
          api('POST', `/v1/tasks/${task.id}/runs`).then((r) => ({
            status: r.status,
            code: r.body.error?.code,
            id: r.body.id,
            afterAnswer,
          })),
        );
        if (i === 3) {
          const req = change === 'delete' ? api('DELETE', `/v1/tasks/${task.id}`) : api('POST', `/v1/tasks/${task.id}/disable`);
          changeAnswer = req.then((r) => {
            answered = true;
            return r.status;
          });
        }
        await sleep(15);
      }
      expect([change, await changeAnswer]).toEqual([change, 200]);
      const answers = await Promise.all(triggers);
      const refusal = change === 'delete' ? [404, 'TASK_NOT_FOUND'] : [422, 'TASK_DISABLED'];
      for (const t of answers) {
        expect([[202, undefined], refusal]).toContainEqual([t.status, t.code]);
        if (t.afterAnswer) expect([change, t.status]).toEqual([change, refusal[0]]);
      }
      const started = answers.filter((t) => t.status === 202).map((t) => t.id);
      // Exactly the answered runs exist, and each was written before the change took the task's lock (both times are
      // taken under that lock by the database's clock).
      const rows: { id: string; late: boolean }[] = await stack.db.query(
        `SELECT r.id, r.queued_at >= coalesce(t.deleted_at, v.created_at) AS late
           FROM runs r JOIN tasks t ON t.id = r.task_id
           LEFT JOIN task_versions v ON v.task_id = t.id AND v.action = 'disable'
          WHERE r.task_id = $1`,
        [task.id],
      );
      expect(rows.map((r) => r.id).sort()).toEqual([...started].sort());
      expect(rows.filter((r) => r.late)).toEqual([]);
      // Runs that started before the change finish as usual.
      for (const id of started) {
        const done = await stack.waitForRun(id as string, (r) => FINAL_RUN_STATUSES.includes(r.status), 60_000, a.apiKey);
        expect([id, done.status]).toEqual([id, 'succeeded']);
      }
    }
  },
  TIMEOUT_MS,
);
