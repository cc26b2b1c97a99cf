/* Trigger and wait: which fire Temporal took for a trigger call, found by
 * describing the schedule (Temporal's trigger returns nothing), and the bounded
 * poll both waits of a trigger use. */
import { setTimeout as sleep } from 'node:timers/promises';
import type { OverlapPolicy } from '@task-scheduler/contracts';
import type { ScheduleDescription, ScheduleSpec } from '@temporalio/client';
import { ApiError, ErrorCode } from '../common/api-error';
import { isUnavailable } from '../common/temporal';
import { specMatchingTimes } from './spec-matcher';

/** How long a trigger waits, at most, for Temporal to take its fire and then for the fire's run to be recorded. */
export const TRIGGER_WAIT_MS = 10_000;
const TRIGGER_POLL_MS = 200;
/** The API's and Temporal's clocks may disagree a little; triggers of one schedule are two seconds apart. */
const TRIGGER_CLOCK_SLACK_MS = 1_000;
/** Temporal takes a trigger well within this; a fire named after a spec time is only taken for it after it. */
const TRIGGER_NATURAL_AFTER_MS = 3_000;

/** Calls `step` every TRIGGER_POLL_MS until it answers, for at most TRIGGER_WAIT_MS (bounded in count and time). */
export async function pollForTrigger<T>(step: () => Promise<T | undefined>): Promise<T | undefined> {
  const deadline = Date.now() + TRIGGER_WAIT_MS;
  for (let i = 0; i < TRIGGER_WAIT_MS / TRIGGER_POLL_MS && Date.now() < deadline; i++) {
    const answer = await step();
    if (answer !== undefined) return answer;
    await sleep(TRIGGER_POLL_MS);
  }
  return undefined;
}

export interface TakenFireInput {
  scheduleId: string;
  /** The schedule's spec without jitter and with its exclusions: the nominal times of its natural fires. */
  nominalSpec: ScheduleSpec;
  describe: () => Promise<ScheduleDescription>;
  /** Temporal's description right before the trigger call. */
  before: ScheduleDescription;
  calledAt: number;
  policy: OverlapPolicy;
}

export async function takenFire(t: TakenFireInput): Promise<string> {
  const { scheduleId, before, calledAt, policy } = t;
  const known = new Set(before.info.recentActions.map((a) => a.action.workflow.workflowId));
  const bufferOf = (d: ScheduleDescription): { size: number; dropped: number } => ({
    // Long in the protobuf: through its string form.
    size: Number(String(d.raw.info?.bufferSize ?? 0)),
    dropped: Number(String(d.raw.info?.bufferDropped ?? 0)),
  });
  const was = bufferOf(before);
  // Temporal names each fire's workflow after its nominal time: a natural fire's is a time the spec matches, the
  // trigger's is the moment Temporal took it. (Should the trigger land on a second the spec matches, the two are
  // one workflow id: Temporal starts only one of them.)
  const prefix = `schedule-${scheduleId}-`;
  const isNatural = (workflowId: string): boolean => {
    const ms = Date.parse(workflowId.slice(prefix.length));
    return workflowId.startsWith(prefix) && !Number.isNaN(ms) && (specMatchingTimes(t.nominalSpec, ms, ms)?.includes(ms) ?? false);
  };
  const workflowId = await pollForTrigger(async () => {
    let d: ScheduleDescription;
    try {
      d = await t.describe();
    } catch (err) {
      if (!isUnavailable(err)) throw err;
      return undefined;
    }
    // Oldest first: a later trigger of the same schedule (two seconds on) is never taken before this one.
    const fresh = d.info.recentActions
      .filter((a) => !known.has(a.action.workflow.workflowId) && a.scheduledAt.getTime() >= calledAt - TRIGGER_CLOCK_SLACK_MS)
      .sort((a, b) => a.scheduledAt.getTime() - b.scheduledAt.getTime());
    // Past TRIGGER_NATURAL_AFTER_MS, a fire named after a spec time is taken too: where the spec matches the very
    // second Temporal took the trigger in (a schedule firing every second), the two fires are one workflow.
    const triggered =
      fresh.find((a) => !isNatural(a.action.workflow.workflowId)) ??
      (Date.now() - calledAt > TRIGGER_NATURAL_AFTER_MS ? fresh[0] : undefined);
    if (triggered) return triggered.action.workflow.workflowId;
    const running = d.info.runningActions.map((a) => a.workflow.workflowId).join(', ');
    const notStarted = (reason: string, message: string): ApiError =>
      new ApiError(ErrorCode.SCHEDULE_TRIGGER_NOT_STARTED, message, [{ field: 'overlap', message: reason, reason, overlap: policy }]);
    if (d.info.numActionsSkippedOverlap > before.info.numActionsSkippedOverlap) {
      throw notStarted(
        'overlap_skip',
        `the fire was skipped under overlap policy ${policy}: a run of this schedule is still going (${running || 'just ended'}); no run was started. Trigger with {"overlap":"allow_all"} to run anyway`,
      );
    }
    const now = bufferOf(d);
    if (now.dropped > was.dropped) {
      throw notStarted(
        'buffer_full',
        `the fire was dropped under overlap policy ${policy}: the buffer of waiting fires is full; no run was started`,
      );
    }
    if (now.size > was.size) {
      throw notStarted(
        'buffered',
        `the fire is buffered under overlap policy ${policy}: it starts when the running run (${running}) ends; no run was started yet`,
      );
    }
    return undefined;
  });
  if (workflowId !== undefined) return workflowId;
  throw new ApiError(
    ErrorCode.SCHEDULE_RUN_NOT_RECORDED,
    `Temporal did not report the fire within ${TRIGGER_WAIT_MS / 1000} s; it may still start: look at GET /v1/schedules/${scheduleId}/fires before triggering again`,
    [{ message: 'Temporal has not reported the fire yet' }],
  );
}
