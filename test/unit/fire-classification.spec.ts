/* How `/fires` classifies a schedule's fires (apps/api/src/schedules/fire-classification.ts), on fire times,
 * runs and pause events given by hand; the same rules for task runs and pipeline runs. The e2e suites check
 * the classification against real fires. */
import { classifyFires, refusalOf } from '../../apps/api/src/schedules/fire-classification';
import type { FireWindow, FiredRun } from '../../apps/api/src/schedules/fire-classification';

const T0 = Date.parse('2026-12-01T00:00:00Z');
const at = (s: number): Date => new Date(T0 + s * 1000);
/** Fires every 10 s from T0 to T0 + 90 s. */
const spec = Array.from({ length: 10 }, (_, i) => at(i * 10));

function run(id: string, scheduledS: number, endS: number | null, over: Partial<FiredRun> = {}): FiredRun {
  return {
    id,
    status: endS === null ? 'running' : 'succeeded',
    scheduledAt: at(scheduledS),
    queuedAt: at(scheduledS + 0.25),
    finishedAt: endS === null ? null : at(endS),
    refused: null,
    ...over,
  };
}

function classify(over: Partial<FireWindow>): Record<string, string> {
  const records = classifyFires({
    expected: spec,
    unexcluded: spec,
    runs: [],
    events: [],
    overlap: 'skip',
    from: at(0),
    until: at(95),
    now: T0 + 200_000,
    ...over,
  });
  return Object.fromEntries(
    records.map((r) => [`${(Date.parse(r.scheduledAt) - T0) / 1000}`, r.outcome === 'missed' ? `missed:${r.reason}` : r.outcome]),
  );
}

test('a fire with a run ran, with its lateness; a fire the exclusions removed is excluded', () => {
  const records = classifyFires({
    expected: spec.filter((_, i) => i !== 3),
    unexcluded: spec,
    runs: [run('r0', 0, 2)],
    events: [],
    overlap: 'skip',
    from: at(0),
    until: at(5),
    now: T0 + 200_000,
  });
  expect(records).toEqual([
    {
      scheduledAt: at(0).toISOString(),
      outcome: 'ran',
      runId: 'r0',
      runStatus: 'succeeded',
      startedAt: at(0.25).toISOString(),
      latenessMs: 250,
      reason: null,
    },
  ]);
  expect(classify({ expected: spec.filter((_, i) => i !== 3), runs: spec.map((_, i) => run(`r${i}`, i * 10, i * 10 + 1)) })['30']).toBe(
    'excluded',
  );
});

test('fires the worker refused are missed with its reason, naming the run it recorded', () => {
  const refused = (id: string, s: number, reason: FiredRun['refused']) => run(id, s, s + 0.5, { status: 'cancelled', refused: reason });
  const records = classifyFires({
    expected: spec,
    unexcluded: spec,
    events: [],
    overlap: 'skip',
    from: at(0),
    until: at(25),
    now: T0 + 200_000,
    runs: [refused('p0', 0, 'pipeline_deleted'), refused('p1', 10, 'params_invalid'), refused('t2', 20, 'task_disabled')],
  });
  expect(records.map((r) => [r.outcome, r.reason, r.runId, r.runStatus, r.startedAt])).toEqual([
    ['missed', 'pipeline_deleted', 'p0', 'cancelled', null],
    ['missed', 'params_invalid', 'p1', 'cancelled', null],
    ['missed', 'task_disabled', 't2', 'cancelled', null],
  ]);
});

test('a fire without a run is missed: task held paused, paused, overlap skip, else outside the catch-up window', () => {
  const events = [
    { kind: 'paused', at: at(5), cause: 'user' },
    { kind: 'resumed', at: at(15), cause: 'user' },
    { kind: 'paused', at: at(25), cause: 'task_disabled' },
    { kind: 'resumed', at: at(35), cause: 'task_disabled' },
  ];
  // A run from 40 s still going at 50 s, ended 61 s: 60 s lies within the close margin, 70 s not.
  const runs = [run('r4', 40, 61)];
  expect(classify({ events, runs, until: at(75) })).toEqual({
    '0': 'missed:outside_catchup_window',
    '10': 'missed:paused',
    '20': 'missed:outside_catchup_window',
    '30': 'missed:task_disabled',
    '40': 'ran',
    '50': 'missed:overlap_skip',
    '60': 'missed:overlap_skip',
    '70': 'missed:outside_catchup_window',
  });
  // Under another overlap policy a running run explains nothing.
  expect(classify({ runs, overlap: 'buffer_one', until: at(55) })['50']).toBe('missed:outside_catchup_window');
});

test('a fire less than 5 s old without a run is left out: it may still be starting', () => {
  expect(classify({ until: at(40), now: T0 + 43_000 })).toEqual({
    '0': 'missed:outside_catchup_window',
    '10': 'missed:outside_catchup_window',
    '20': 'missed:outside_catchup_window',
    '30': 'missed:outside_catchup_window',
  });
});

test('runs at times the spec does not produce (a trigger, a backfill) are fires that ran, inside the window only', () => {
  const records = classifyFires({
    expected: [],
    unexcluded: [],
    events: [],
    overlap: 'skip',
    from: at(10),
    until: at(20),
    now: T0 + 200_000,
    runs: [run('early', 3, 4), run('trigger', 13.4, 15), run('late', 23, 24)],
  });
  expect(records.map((r) => [r.runId, r.outcome, r.latenessMs])).toEqual([['trigger', 'ran', 250]]);
});

test('a refusal is read from a cancelled run that never started, by the prefix of its error', () => {
  expect(
    refusalOf({
      status: 'cancelled',
      started: false,
      error: 'pipeline_deleted: the pipeline was deleted before this run was due; nothing ran',
    }),
  ).toBe('pipeline_deleted');
  expect(refusalOf({ status: 'cancelled', started: false, error: 'params_invalid: date is required; nothing ran' })).toBe('params_invalid');
  expect(
    refusalOf({ status: 'cancelled', started: false, error: 'task_disabled: the task was disabled when this run was due; nothing ran' }),
  ).toBe('task_disabled');
  expect(refusalOf({ status: 'cancelled', started: true, error: 'task_disabled: …' })).toBeNull();
  expect(refusalOf({ status: 'failed', started: false, error: 'pipeline_deleted: …' })).toBeNull();
  expect(refusalOf({ status: 'cancelled', started: false, error: 'cancelled by a user' })).toBeNull();
  expect(refusalOf({ status: 'cancelled', started: false, error: null })).toBeNull();
});
