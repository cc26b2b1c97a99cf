import { ApplicationFailure, Context } from '@temporalio/activity';
import type { CapturedStream, ShardRef } from '@task-scheduler/contracts';
import { maskSecrets, openSecrets } from '@task-scheduler/core';
import type { TaskSecretValues } from '@task-scheduler/core';
import type { AttemptEnd, RunRecorder } from './runs/run-recorder';

/** Failure type when a task's secrets cannot be decrypted by this worker (wrong or missing SECRETS_KEY). */
export const SECRETS_UNAVAILABLE = 'SecretsUnavailable';

/**
 * Decrypts a task's sealed secrets for one attempt. A worker without the key,
 * or with a different one, fails the attempt without retry: retrying on the
 * same misconfiguration cannot succeed.
 */
export function unsealTaskSecrets(sealed: string | null | undefined, key: Buffer | null, tenantId: string): TaskSecretValues {
  if (!sealed) return {};
  if (!key) throw ApplicationFailure.nonRetryable('the task has secrets but this worker has no SECRETS_KEY', SECRETS_UNAVAILABLE);
  try {
    return openSecrets(sealed, key, tenantId);
  } catch {
    throw ApplicationFailure.nonRetryable("the task's secrets cannot be decrypted with this worker's SECRETS_KEY", SECRETS_UNAVAILABLE);
  }
}

/**
 * Masks secret values in captured output before it is stored or returned.
 * Output is capped before it is masked, so a cut stream may end in the first
 * characters of a secret: that tail (4 characters or more, or a whole short
 * secret) is masked too.
 */
export function maskStream(stream: CapturedStream, secrets: readonly string[]): CapturedStream {
  if (secrets.length === 0) return stream;
  let text = maskSecrets(stream.text, secrets);
  if (stream.truncated) {
    for (const s of secrets) {
      for (let n = Math.min(s.length - 1, text.length); n >= Math.min(4, s.length); n--) {
        if (text.endsWith(s.slice(0, n))) {
          text = `${text.slice(0, text.length - n)}***`;
          break;
        }
      }
    }
  }
  return { ...stream, text };
}

/** The attempt record's status for an executor outcome. */
export function attemptStatusOf(ok: boolean, outcome: string): AttemptEnd['status'] {
  if (ok) return 'succeeded';
  return outcome === 'timed_out' || outcome === 'cancelled' ? outcome : 'failed';
}

export interface RecordedAttempt {
  ctx: Context;
  attempt: number;
  shardIndex: number;
  /** Records how the attempt ended. */
  finish(end: Omit<AttemptEnd, 'runId' | 'shardIndex' | 'attempt'>): Promise<void>;
}

/**
 * Runs one executor attempt between its start and end records. An error
 * thrown before the attempt reported its end (secrets that do not decrypt,
 * a URL placeholder without a value) is recorded as the attempt's failure
 * before it propagates, so no attempt is left looking lost.
 */
export async function inRecordedAttempt<T>(
  deps: { recorder: RunRecorder; workerIdentity: string },
  ref: ShardRef,
  body: (a: RecordedAttempt) => Promise<T>,
  isolation: 'sandbox' | 'none' | null = null,
): Promise<T> {
  const ctx = Context.current();
  const attempt = ctx.info.attempt;
  const shardIndex = ref.shardIndex ?? 0;
  await deps.recorder.startAttempt({
    runId: ref.runId,
    tenantId: ref.tenantId,
    shardIndex,
    attempt,
    workerIdentity: deps.workerIdentity,
    isolation,
  });
  let finished = false;
  const finish: RecordedAttempt['finish'] = async (end) => {
    finished = true;
    await deps.recorder.finishAttempt({ runId: ref.runId, shardIndex, attempt, ...end });
  };
  try {
    return await body({ ctx, attempt, shardIndex, finish });
  } catch (err) {
    if (!finished) {
      const error = err instanceof Error ? err.message : String(err);
      await finish({ status: 'failed', exitCode: null, httpStatus: null, error, stdout: null, stderr: null });
    }
    throw err;
  }
}
