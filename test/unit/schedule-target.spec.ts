/* What a schedule fires (apps/api/src/schedules/schedule-target.ts) and the Temporal action built for it
 * (schedule-translator.ts): pure, no Temporal or database here; test/e2e/pipeline-schedules.e2e.spec.ts
 * fires the real thing. */
import { loadConfig } from '@task-scheduler/config';
import type { TypedSearchAttributes } from '@temporalio/common';
import type { CalendarEntity, PipelineEntity, ScheduleEntity, TaskEntity } from '@task-scheduler/db';
import { ApiError, ErrorCode } from '../../apps/api/src/common/api-error';
import { scheduleParams, storedTargetOf, targetOf } from '../../apps/api/src/schedules/schedule-target';
import { createOptionsOf, effectivePause } from '../../apps/api/src/schedules/schedule-translator';
import type { DesiredSchedule } from '../../apps/api/src/schedules/schedule-translator';

const TASK = '6f1c1c9e-0000-4000-8000-000000000001';
const PIPELINE = '6f1c1c9e-0000-4000-8000-000000000002';
const TENANT = '6f1c1c9e-0000-4000-8000-000000000003';
const SCHEDULE = '6f1c1c9e-0000-4000-8000-000000000004';

function refusal(f: () => unknown): ApiError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    return err as ApiError;
  }
  throw new Error('expected a refusal');
}

describe('the target of a new schedule', () => {
  test('a task, or a pipeline with its params (none given: {})', () => {
    expect(targetOf({ taskId: TASK })).toEqual({ kind: 'task', taskId: TASK });
    expect(targetOf({ pipelineId: PIPELINE, params: { date: '2026-12-01' } })).toEqual({
      kind: 'pipeline',
      pipelineId: PIPELINE,
      params: { date: '2026-12-01' },
    });
    expect(targetOf({ pipelineId: PIPELINE })).toEqual({ kind: 'pipeline', pipelineId: PIPELINE, params: {} });
  });

  test.each([
    ['both ids', { taskId: TASK, pipelineId: PIPELINE }, 'pipelineId', /either taskId or pipelineId, not both/],
    ['neither id', {}, 'taskId', /give taskId .* or pipelineId/],
    ['params on a task schedule', { taskId: TASK, params: { a: 1 } }, 'params', /params are for schedules of a pipeline/],
  ])('%s is refused naming the field', (_what, dto, field, message) => {
    const err = refusal(() => targetOf(dto));
    expect([err.code, err.status]).toEqual([ErrorCode.SCHEDULE_TARGET_INVALID, 422]);
    expect(err.details).toEqual([{ field, message: expect.stringMatching(message) }]);
  });

  test('a stored row answers its one target', () => {
    expect(storedTargetOf({ taskId: TASK, pipelineId: null, params: null })).toEqual({ kind: 'task', taskId: TASK });
    expect(storedTargetOf({ taskId: null, pipelineId: PIPELINE, params: null })).toEqual({
      kind: 'pipeline',
      pipelineId: PIPELINE,
      params: {},
    });
  });
});

describe("a pipeline schedule's params", () => {
  const declared = [{ name: 'date' }, { name: 'limit', default: 10 }, { name: 'mode', required: false }];

  test('are stored as given: the defaults are applied at each fire, not frozen into the schedule', () => {
    expect(scheduleParams(declared, { date: '2026-12-01' })).toEqual({ date: '2026-12-01' });
    expect(scheduleParams(declared, { date: 'x', limit: 3, mode: 'fast' })).toEqual({ date: 'x', limit: 3, mode: 'fast' });
  });

  test('unknown and missing required ones are refused together, as for a manual run', () => {
    const err = refusal(() => scheduleParams(declared, { dat: '2026-12-01' }));
    expect([err.code, err.status]).toEqual([ErrorCode.PIPELINE_PARAMS_INVALID, 422]);
    expect(err.details).toEqual([
      { field: 'params.dat', message: expect.stringMatching(/dat is not a parameter of this pipeline \(it has: date, limit, mode\)/) },
      { field: 'params.date', message: 'date is required' },
    ]);
  });
});

describe('the Temporal action of a pipeline schedule', () => {
  const config = loadConfig({ DATABASE_URL: 'postgres://u@localhost/db', TASK_QUEUE_PREFIX: 'unit' });
  const schedule = {
    id: SCHEDULE,
    tenantId: TENANT,
    taskId: null,
    pipelineId: PIPELINE,
    params: { date: '2026-12-01' },
    spec: { intervals: [{ everySeconds: 2 }], timezone: 'UTC' },
    policies: { overlap: 'buffer_one', catchupWindowSeconds: 60, pauseOnFailure: true, remainingActions: null },
    excludeCalendarIds: [],
    paused: false,
    pauseNote: null,
    temporalScheduleId: `unit.schedule.${SCHEDULE}`,
    version: 3,
  } as unknown as ScheduleEntity;
  const pipeline = { id: PIPELINE, tenantId: TENANT, name: 'etl', version: 7 } as PipelineEntity;
  const desired = (over: Partial<DesiredSchedule> = {}): DesiredSchedule => ({
    schedule,
    target: { kind: 'pipeline', pipeline },
    calendars: [] as CalendarEntity[],
    tenantSuspended: false,
    shellPolicy: null,
    ...over,
  });

  test('starts pipelineRunWorkflow with the schedule as input, on the workflows queue, fair by tenant', () => {
    const options = createOptionsOf(config, desired());
    const action = options.action as any;
    expect(action).toMatchObject({
      type: 'startWorkflow',
      workflowType: 'pipelineRunWorkflow',
      taskQueue: 'unit.workflows',
      workflowId: `schedule-${SCHEDULE}`,
      args: [
        {
          tenantId: TENANT,
          pipelineId: PIPELINE,
          scheduleId: SCHEDULE,
          params: { date: '2026-12-01' },
          trigger: 'schedule',
          httpTaskQueue: 'unit.http',
        },
      ],
      priority: { fairnessKey: TENANT },
      // No pipeline version: the workflow runs the version current at the fire.
      memo: { scheduleVersion: 3, pipelineName: 'etl', specEncoding: 2, apiPaused: false },
    });
    expect(action.memo).not.toHaveProperty('taskVersion');
    const attributes = action.typedSearchAttributes.getAll().map((p: any) => [p.key.name, p.value]);
    expect(attributes).toEqual([
      ['TenantId', TENANT],
      ['Trigger', 'schedule'],
    ]);
    expect(options.policies).toMatchObject({ catchupWindow: '60s', pauseOnFailure: true });
    expect((options.typedSearchAttributes as TypedSearchAttributes).getAll().map((p) => p.key.name)).toEqual(['TenantId']);
  });

  test("pauses as the schedule and its tenant say; a task's disable or egress rules do not apply", () => {
    expect(effectivePause(desired())).toEqual({ paused: false, note: undefined });
    expect(effectivePause(desired({ tenantSuspended: true }))).toEqual({ paused: true, note: 'paused: tenant suspended' });
    const paused = { ...schedule, paused: true, pauseNote: 'maintenance' } as ScheduleEntity;
    expect(effectivePause(desired({ schedule: paused }))).toEqual({ paused: true, note: 'maintenance' });
  });

  test('a task schedule keeps its action, now fair by tenant too', () => {
    const task = {
      id: TASK,
      tenantId: TENANT,
      name: 'report',
      version: 2,
      enabled: true,
      executor: 'shell',
      spec: { command: 'true', args: [] },
      timeoutSeconds: 60,
      retry: { maximumAttempts: 1 },
      shards: null,
      priority: 'normal',
      secrets: null,
    } as unknown as TaskEntity;
    const options = createOptionsOf(
      config,
      desired({
        schedule: { ...schedule, taskId: TASK, pipelineId: null, params: null } as ScheduleEntity,
        target: { kind: 'task', task },
      }),
    );
    expect(options.action).toMatchObject({
      workflowType: 'taskRunWorkflow',
      priority: { fairnessKey: TENANT },
      memo: { scheduleVersion: 3, taskVersion: 2, taskName: 'report' },
    });
  });
});
