/* Runs that schedules make: fire times, pause and resume, overlap, backfill and trigger —
 * real API, real Temporal dev server and workers, real PostgreSQL. Every count is scoped to
 * this suite's own tenant and schedules; every schedule is deleted when its test ends so it
 * stops firing. */
import { Client, Connection } from '@temporalio/client';
import { FINAL_RUN_STATUSES } from '@task-scheduler/contracts';
import { startStack } from '../support/stack';
import { eventually } from '../support/eventually';
import type { TestStack } from '../support/stack';

let stack: TestStack;
let connection: Connection;
let client: Client;
let tenant: { tenantId: string; apiKey: string };

const TIMEOUT_MS = 120_000;
const SECOND = 1_000;
const MINUTE = 60_000;

/** Schedules created by the running test and not deleted yet (afterEach deletes them, pass or fail). */
const live = new Set<string>();

beforeAll(async () => {
  stack = await startStack('schedule-runs');
  connection = await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS });
  client = new Client({ connection });
  tenant = await stack.createTenant(`sched-runs-${Date.now()}`, { maxConcurrentRuns: 50 });
});
afterEach(async () => {
  for (const id of [...live]) await deleteSchedule(id);
});
afterAll(async () => {
  await connection?.close();
  await stack?.stop();
});

interface RunRow {
  id: string;
  trigger: string;
  status: string;
  schedule_id: string;
  workflow_id: string;
  temporal_run_id: string | null;
  scheduled_at: Date;
  queued_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

interface Fire {
  scheduledAt: string;
  outcome: 'ran' | 'missed' | 'excluded';
  runId: string | null;
  runStatus: string | null;
  startedAt: string | null;
  latenessMs: number | null;
  reason: 'paused' | 'overlap_skip' | 'outside_catchup_window' | 'excluded' | null;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const iso = (ms: number): string => new Date(ms).toISOString();

function api(method: string, path: string, body?: unknown) {
  return stack.request(method, path, { body, apiKey: tenant.apiKey });
}

async function createTask(name: string, command: string, args: string[] = []): Promise<string> {
  const res = await api('POST', '/v1/tasks', {
    name,
    executor: 'shell',
    shell: { command, args },
    timeoutSeconds: 120,
    retry: { maximumAttempts: 1 },
  });
  expect(res.status).toBe(201);
  return res.body.id;
}

async function createSchedule(body: Record<string, unknown>): Promise<any> {
  const res = await api('POST', '/v1/schedules', body);
  expect([res.status, res.body.error]).toEqual([201, undefined]);
  live.add(res.body.id);
  return res.body;
}

async function deleteSchedule(id: string): Promise<void> {
  const res = await api('DELETE', `/v1/schedules/${id}`);
  expect(res.status).toBe(204);
  live.delete(id);
}

/** The schedule's runs from PostgreSQL, in fire order. */
async function runsOf(scheduleId: string): Promise<RunRow[]> {
  return stack.db.query(
    `SELECT id, trigger, status, schedule_id, workflow_id, temporal_run_id, scheduled_at, queued_at, started_at, finished_at
       FROM runs WHERE schedule_id = $1 ORDER BY scheduled_at, queued_at`,
    [scheduleId],
  );
}

async function countRuns(scheduleId: string): Promise<number> {
  const [{ n }] = await stack.db.query(`SELECT count(*)::int AS n FROM runs WHERE schedule_id = $1`, [scheduleId]);
  return n;
}

async function firesOf(scheduleId: string, from: number, to: number): Promise<Fire[]> {
  const res = await api('GET', `/v1/schedules/${scheduleId}/fires?from=${iso(from)}&to=${iso(to)}`);
  expect(res.status).toBe(200);
  return res.body.items;
}

/** Outcome counts of fires, `missed` split by reason: `{ ran: 17, 'missed:overlap_skip': 3 }`. */
function tally(fires: Fire[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of fires) {
    const key = f.outcome === 'missed' ? `missed:${f.reason}` : f.outcome;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Pairs of runs whose [start, end] overlap; a run not finished yet is open-ended. */
function overlappingPairs(runs: RunRow[]): string[] {
  const span = (r: RunRow) => ({
    start: (r.started_at ?? r.queued_at).getTime(),
    end: r.finished_at?.getTime() ?? Number.POSITIVE_INFINITY,
  });
  const out: string[] = [];
  for (let i = 0; i < runs.length; i++) {
    for (let j = i + 1; j < runs.length; j++) {
      const a = span(runs[i]);
      const b = span(runs[j]);
      if (a.start < b.end && b.start < a.end) {
        out.push(
          `${runs[i].id} [${iso(a.start)}, ${a.end === Infinity ? 'running' : iso(a.end)}] × ${runs[j].id} [${iso(b.start)}, ${b.end === Infinity ? 'running' : iso(b.end)}]`,
        );
      }
    }
  }
  return out;
}

const everySecond = { intervals: [{ everySeconds: 1 }] };

test(
  'a one-second schedule makes one run per fire, on whole seconds, with the schedule in PostgreSQL, the API and Temporal',
  async () => {
    const taskId = await createTask('tick', 'true');
    const s = await createSchedule({ name: 'every-second', taskId, spec: everySecond });
    const createdAt = Date.parse(s.createdAt);

    await sleep(20_000);
    // /fires calls a fire without a run missed only once it is 5 s old: it can vouch for the fires up to
    // `checkedUntil` after a few more seconds (the schedule goes on firing meanwhile).
    const checkedUntil = Date.now();
    await sleep(6_000);
    const fires = await firesOf(s.id, createdAt, checkedUntil);
    const { stats } = (await api('GET', `/v1/schedules/${s.id}`)).body;
    await deleteSchedule(s.id);
    const deletedAt = Date.now();
    // A fire taken just before the delete still records its run; then every run finishes (`true` is quick).
    await sleep(2_000);
    const runs = await eventually(
      () => runsOf(s.id),
      (rs) => rs.every((r) => FINAL_RUN_STATUSES.includes(r.status as never)),
      30_000,
    );

    expect(runs.length).toBeGreaterThanOrEqual(10);
    for (const r of runs) {
      expect({ id: r.id, trigger: r.trigger, scheduleId: r.schedule_id, status: r.status }).toEqual({
        id: r.id,
        trigger: 'schedule',
        scheduleId: s.id,
        status: 'succeeded',
      });
      expect(r.scheduled_at.getTime() % SECOND).toBe(0);
      expect(r.workflow_id.startsWith(`schedule-${s.id}-`)).toBe(true);
    }
    const times = runs.map((r) => r.scheduled_at.getTime());
    expect(new Set(times).size).toBe(times.length);
    expect(times[0]).toBeGreaterThan(createdAt - SECOND);
    expect(times[times.length - 1]).toBeLessThanOrEqual(deletedAt);

    // Consecutive seconds; a second with no run in between is a gap /fires must report as missed
    // (those after `checkedUntil` are only printed).
    const firesAt = new Map(fires.map((f) => [Date.parse(f.scheduledAt), f]));
    const gaps: string[] = [];
    const unchecked: string[] = [];
    for (let i = 1; i < times.length; i++) {
      for (let t = times[i - 1] + SECOND; t < times[i]; t += SECOND) {
        const f = firesAt.get(t);
        if (t <= checkedUntil) gaps.push(`${iso(t)}: ${f ? `${f.outcome}/${f.reason}` : 'not reported'}`);
        else unchecked.push(iso(t));
      }
    }
    console.log(
      `1 s schedule: ${runs.length} runs, gaps between runs: ${gaps.length ? gaps.join('; ') : 'none'}` +
        `${unchecked.length ? ` (and after the /fires cut-off: ${unchecked.join(', ')})` : ''}; /fires: ${JSON.stringify(tally(fires))}; stats ${JSON.stringify(stats)}`,
    );
    for (const g of gaps) expect(g).toMatch(/: missed\//);

    // /fires agrees with the run rows for every run it covers.
    for (const r of runs.filter((x) => firesAt.has(x.scheduled_at.getTime()))) {
      expect(firesAt.get(r.scheduled_at.getTime())).toMatchObject({
        outcome: 'ran',
        runId: r.id,
        latenessMs: r.queued_at.getTime() - r.scheduled_at.getTime(),
      });
    }

    // Lateness: from the fire's nominal time to its run being recorded by the fire's workflow.
    const lateness = runs.map((r) => r.queued_at.getTime() - r.scheduled_at.getTime()).sort((a, b) => a - b);
    for (const ms of lateness) expect(ms).toBeGreaterThanOrEqual(0);
    console.log(
      `1 s schedule lateness (queued_at − scheduled_at) over ${lateness.length} runs: ` +
        `p50 ${percentile(lateness, 50)} ms, p95 ${percentile(lateness, 95)} ms, p99 ${percentile(lateness, 99)} ms, max ${lateness[lateness.length - 1]} ms`,
    );

    // The API lists the same runs as scheduled ones.
    const listed = await api('GET', `/v1/runs?trigger=schedule&taskId=${taskId}&limit=200`);
    expect(listed.status).toBe(200);
    expect(listed.body.items.map((r: any) => r.id).sort()).toEqual(runs.map((r) => r.id).sort());
    for (const r of listed.body.items) {
      const row = runs.find((x) => x.id === r.id) as RunRow;
      expect(r).toMatchObject({ trigger: 'schedule', scheduleId: s.id, scheduledAt: row.scheduled_at.toISOString() });
    }

    // Each run's workflow carries the drawn run id and the trigger, findable in the Temporal UI.
    const toStart: number[] = [];
    for (const r of runs) {
      const desc = await client.workflow.getHandle(r.workflow_id).describe();
      toStart.push(desc.startTime.getTime() - r.scheduled_at.getTime());
      const sa = desc.searchAttributes as Record<string, unknown[]>;
      expect({ runId: r.id, TaskRunId: sa.TaskRunId, Trigger: sa.Trigger, TaskId: sa.TaskId, TenantId: sa.TenantId }).toEqual({
        runId: r.id,
        TaskRunId: [r.id],
        Trigger: ['schedule'],
        TaskId: [taskId],
        TenantId: [tenant.tenantId],
      });
      expect((sa.TemporalScheduledStartTime?.[0] as Date).getTime()).toBe(r.scheduled_at.getTime());
      expect(desc.runId).toBe(r.temporal_run_id);
    }
    toStart.sort((a, b) => a - b);
    console.log(
      `1 s schedule, of which fire → workflow started (Temporal's part): ` +
        `p50 ${percentile(toStart, 50)} ms, p95 ${percentile(toStart, 95)} ms, max ${toStart[toStart.length - 1]} ms`,
    );
  },
  TIMEOUT_MS,
);

test(
  'pause stops the runs (the paused seconds are reported missed: paused) and resume restarts them without catching up',
  async () => {
    const taskId = await createTask('pausable', 'true');
    const s = await createSchedule({ name: 'pause-resume', taskId, spec: everySecond });
    await eventually(
      () => countRuns(s.id),
      (n) => n >= 3,
      30_000,
    );

    const pausedAt = Date.now();
    const paused = await api('POST', `/v1/schedules/${s.id}/pause`, { note: 'test' });
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ paused: true, note: 'test' });
    // A fire already taken when the pause landed may still record its run.
    await sleep(1_500);
    const atPause = await countRuns(s.id);
    const quietFrom = Date.now();
    await sleep(4_000);
    const quietTo = Date.now();
    expect(await countRuns(s.id)).toBe(atPause);

    const got = await api('GET', `/v1/schedules/${s.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ paused: true, note: 'test', temporal: 'ok' });
    const state = (await client.schedule.getHandle(s.temporalScheduleId).describe()).state;
    expect({ paused: state.paused, note: state.note }).toEqual({ paused: true, note: 'test' });

    // /fires calls a fire missed once it is 5 s old: stay paused until the quiet span is.
    await sleep(5_500);
    expect(await countRuns(s.id)).toBe(atPause);
    const fires = await firesOf(s.id, Date.parse(s.createdAt), Date.now());
    const firesAt = new Map(fires.map((f) => [Date.parse(f.scheduledAt), f]));
    const quietSeconds: number[] = [];
    for (let t = Math.ceil(quietFrom / SECOND) * SECOND; t <= quietTo; t += SECOND) quietSeconds.push(t);
    expect(quietSeconds.length).toBeGreaterThanOrEqual(3);
    for (const t of quietSeconds) {
      expect({ at: iso(t), ...firesAt.get(t) }).toMatchObject({ at: iso(t), outcome: 'missed', reason: 'paused' });
    }
    const runsBefore = await runsOf(s.id);
    expect(runsBefore.every((r) => r.scheduled_at.getTime() < pausedAt + SECOND)).toBe(true);
    console.log(`pause: ${atPause} runs before the pause; /fires ${JSON.stringify(tally(fires))}`);

    const resumeAt = Date.now();
    const resumed = await api('POST', `/v1/schedules/${s.id}/resume`);
    expect(resumed.status).toBe(200);
    expect(resumed.body).toMatchObject({ paused: false, note: null });
    await eventually(
      () => countRuns(s.id),
      (n) => n >= atPause + 2,
      10_000,
    );
    const after = (await runsOf(s.id)).slice(atPause);
    // Temporal does not catch up fires that fell while the schedule was paused.
    for (const r of after) expect(r.scheduled_at.getTime()).toBeGreaterThan(resumeAt - SECOND);
    expect((await api('GET', `/v1/schedules/${s.id}`)).body.paused).toBe(false);
    await deleteSchedule(s.id);
  },
  TIMEOUT_MS,
);

test(
  'overlap skip: a run never overlaps the previous one, and the skipped fires are counted and reported',
  async () => {
    const taskId = await createTask('slow', 'sleep', ['3']);
    const s = await createSchedule({ name: 'overlap-skip', taskId, spec: everySecond, policies: { overlap: 'skip' } });
    const createdAt = Date.parse(s.createdAt);

    await sleep(12_000);
    const got = await api('GET', `/v1/schedules/${s.id}`);
    expect(got.status).toBe(200);
    const fires = await firesOf(s.id, createdAt, Date.now());
    await deleteSchedule(s.id);
    await sleep(1_000);

    const runs = await runsOf(s.id);
    expect(runs.length).toBeGreaterThanOrEqual(2);
    expect(overlappingPairs(runs)).toEqual([]);
    expect(got.body.stats.skippedOverlap).toBeGreaterThan(0);
    const counts = tally(fires);
    expect(counts['missed:overlap_skip'] ?? 0).toBeGreaterThan(0);
    console.log(`overlap skip over 12 s: ${runs.length} runs, stats ${JSON.stringify(got.body.stats)}, /fires ${JSON.stringify(counts)}`);

    // Once the last run has finished too, still no two runs overlap.
    const finished = await eventually(
      () => runsOf(s.id),
      (rs) => rs.every((r) => FINAL_RUN_STATUSES.includes(r.status as never)),
      30_000,
    );
    expect(finished.map((r) => r.status)).toEqual(finished.map(() => 'succeeded'));
    expect(overlappingPairs(finished)).toEqual([]);
  },
  TIMEOUT_MS,
);

test(
  'backfill starts exactly the fires without a run, and a fire never gets a second run',
  async () => {
    const taskId = await createTask('backfilled', 'true');
    // Paused, so that only the backfills start runs: Temporal runs the backfills of a paused schedule.
    const s = await createSchedule({ name: 'backfill', taskId, spec: { cron: ['* * * * *'] }, paused: true, note: 'backfill only' });
    const T = Math.floor(Date.now() / MINUTE) * MINUTE;
    const marks = (from: number, to: number): string[] => {
      const out: string[] = [];
      for (let t = from; t <= to; t += MINUTE) out.push(iso(t));
      return out;
    };
    const inRange = async (from: number, to: number): Promise<RunRow[]> =>
      (await runsOf(s.id)).filter((r) => r.scheduled_at.getTime() >= from && r.scheduled_at.getTime() <= to);

    const first = await api('POST', `/v1/schedules/${s.id}/backfill`, { start: iso(T - 6 * MINUTE), end: iso(T - 3 * MINUTE) });
    expect(first.status).toBe(202);
    expect(first.body).toEqual({ fires: 4, alreadyRan: 0, started: 4 });
    await eventually(
      () => inRange(T - 6 * MINUTE, T - 3 * MINUTE),
      (rs) => rs.length >= 4,
      30_000,
    );

    const second = await api('POST', `/v1/schedules/${s.id}/backfill`, { start: iso(T - 6 * MINUTE), end: iso(T - MINUTE) });
    expect(second.status).toBe(202);
    expect(second.body).toEqual({ fires: 6, alreadyRan: 4, started: 2 });
    await eventually(
      () => inRange(T - 6 * MINUTE, T - MINUTE),
      (rs) => rs.length >= 6,
      30_000,
    );
    await sleep(2_000);
    const runs = await inRange(T - 6 * MINUTE, T - MINUTE);
    expect(runs.map((r) => r.scheduled_at.toISOString())).toEqual(marks(T - 6 * MINUTE, T - MINUTE));
    for (const r of runs) expect(r.trigger).toBe('schedule');

    // The whole range again, fires that ran included: their workflows find the fire taken and do nothing.
    const actionsBefore = (await api('GET', `/v1/schedules/${s.id}`)).body.stats.actionsTaken;
    const third = await api('POST', `/v1/schedules/${s.id}/backfill`, {
      start: iso(T - 6 * MINUTE),
      end: iso(T - MINUTE),
      onlyMissing: false,
    });
    expect(third.status).toBe(202);
    expect(third.body).toEqual({ fires: 6, alreadyRan: 6, started: 0 });
    const actionsAfter = await eventually(
      () => api('GET', `/v1/schedules/${s.id}`).then((r) => r.body.stats.actionsTaken as number),
      (n) => n > actionsBefore,
      20_000,
    );
    await sleep(4_000);
    const again = await inRange(T - 6 * MINUTE, T - MINUTE);
    expect(again.map((r) => r.id)).toEqual(runs.map((r) => r.id));
    expect(await countRuns(s.id)).toBe(6);
    console.log(`backfill: onlyMissing:false over 6 fires took ${actionsAfter - actionsBefore} more actions in Temporal, 0 new runs`);
    await deleteSchedule(s.id);
  },
  TIMEOUT_MS,
);

test(
  'trigger fires now; under overlap skip a second trigger while the run is going starts nothing, with allow_all it does',
  async () => {
    const taskId = await createTask('long', 'sleep', ['60']);
    // Fires on 1 January only: during the test only triggers start runs.
    const s = await createSchedule({ name: 'trigger', taskId, spec: { cron: ['0 0 1 1 *'] }, policies: { overlap: 'skip' } });

    const triggeredAt = Date.now();
    const fired = await api('POST', `/v1/schedules/${s.id}/trigger`, {});
    // The answer is the run the fire started, like POST /v1/tasks/{id}/runs answers.
    expect([fired.status, fired.body.error?.code]).toEqual([202, undefined]);
    expect(fired.body).toMatchObject({ trigger: 'schedule', scheduleId: s.id, taskId, taskVersion: 1 });
    expect(fired.headers.get('location')).toBe(`/v1/runs/${fired.body.id}`);
    const [first] = await eventually(
      () => runsOf(s.id),
      (rs) => rs.length === 1 && rs[0].started_at !== null,
      20_000,
    );
    expect(first.id).toBe(fired.body.id);
    expect(first.trigger).toBe('schedule');
    expect(Math.abs(first.scheduled_at.getTime() - triggeredAt)).toBeLessThan(10_000);
    const viaApi = await api('GET', `/v1/runs/${first.id}`);
    expect(viaApi.body).toMatchObject({ trigger: 'schedule', scheduleId: s.id, status: 'running' });

    // The schedule's own policy (skip) applies to a trigger: the first run is still going.
    await sleep(1_100);
    const skipped = await api('POST', `/v1/schedules/${s.id}/trigger`, {});
    // Skipped under the overlap policy: said so, not answered as if a run had started.
    expect([skipped.status, skipped.body.error?.code]).toEqual([409, 'SCHEDULE_TRIGGER_NOT_STARTED']);
    expect(skipped.body.error.details).toEqual([expect.objectContaining({ field: 'overlap', reason: 'overlap_skip' })]);
    await sleep(4_000);
    expect(await countRuns(s.id)).toBe(1);
    const stats = (await api('GET', `/v1/schedules/${s.id}`)).body.stats;
    expect(stats.skippedOverlap).toBeGreaterThanOrEqual(1);

    // A task change reaches the schedule's next fire; the run already going keeps its version.
    expect((await api('PATCH', `/v1/tasks/${taskId}`, { shell: { command: 'sleep', args: ['59'] } })).body.version).toBe(2);
    const allowed = await api('POST', `/v1/schedules/${s.id}/trigger`, { overlap: 'allow_all' });
    expect([allowed.status, allowed.body.error?.code]).toEqual([202, undefined]);
    expect(allowed.body.id).not.toBe(fired.body.id);
    expect(allowed.body.taskVersion).toBe(2);
    expect((await api('GET', `/v1/runs/${fired.body.id}`)).body.taskVersion).toBe(1);
    const runs = await eventually(
      () => runsOf(s.id),
      (rs) => rs.length === 2,
      20_000,
    );
    expect(runs.map((r) => r.trigger)).toEqual(['schedule', 'schedule']);
    expect(runs[1].scheduled_at.getTime()).toBeGreaterThan(runs[0].scheduled_at.getTime());
    console.log(
      `trigger: stats after the skipped and the allowed trigger ${JSON.stringify((await api('GET', `/v1/schedules/${s.id}`)).body.stats)}`,
    );

    await deleteSchedule(s.id);
    for (const r of runs) {
      const res = await api('POST', `/v1/runs/${r.id}/cancel`);
      expect([202, 409]).toContain(res.status);
    }
    for (const r of runs) await stack.waitForRun(r.id, (x) => FINAL_RUN_STATUSES.includes(x.status), 30_000, tenant.apiKey);
  },
  TIMEOUT_MS,
);
