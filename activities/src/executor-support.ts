import { ApplicationFailure, Context } from '@temporalio/activity';
import type { CapturedStream, ShardRef } from '@task-scheduler/contracts';
import { serializeError } from '@task-scheduler/config';
import { maskSecrets, openSecrets } from '@task-scheduler/core';
import type { TaskSecretValues } from '@task-scheduler/core';
import { isDatabaseUnavailable } from '@task-scheduler/db';
import type { OutputStreamName, RunOutputStore } from '@task-scheduler/db';
import { LiveOutput } from './live-output';
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

/**
 * Masks secret values in the END of a stream: besides whole secrets, a text
 * that starts with the last characters of one (the cut went through it) has
 * that head masked (4 characters or more, or a whole short secret).
 */
export function maskTail(stream: CapturedStream, secrets: readonly string[]): CapturedStream {
  if (secrets.length === 0) return stream;
  let text = maskSecrets(stream.text, secrets);
  if (stream.truncated) {
    for (const s of secrets) {
      for (let n = Math.min(s.length - 1, text.length); n >= Math.min(4, s.length); n--) {
        if (text.startsWith(s.slice(s.length - n))) {
          text = `***${text.slice(n)}`;
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

/** Told how each attempt ended (the worker's metrics). */
export interface AttemptObserver {
  attemptEnded(e: {
    executor: 'shell' | 'http';
    status: AttemptEnd['status'];
    durationMs: number;
    /** From the attempt being scheduled (the run queued, or its retry due) to this worker starting it. */
    queuedMs: number | null;
    stdoutBytes: number;
    stderrBytes: number;
    resourceLimit: string | null;
    /** Shell attempts in a sandbox: the time its isolation took to set up. */
    isolationSetupMs?: number;
  }): void;
}

/** Where an attempt's output goes while it runs (the run output store), and how much of it. */
export interface LiveOutputConfig {
  store: RunOutputStore;
  capBytes: number;
  flushMs: number;
}

/** The worker's structured log, as much of pino's interface as the activities use. */
export interface AttemptLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** What every executor's activities are built with. */
export interface ExecutorActivityDeps {
  recorder: RunRecorder;
  workerIdentity: string;
  heartbeatMs: number;
  /** Decrypts task secrets; null when SECRETS_KEY is not configured. */
  secretsKey: Buffer | null;
  /** Streams output to the run output store as it is printed; without it only the attempt's end is recorded. */
  output?: LiveOutputConfig;
  observer?: AttemptObserver;
  log?: AttemptLog;
  /** Bytes of each stream the activity returns into Temporal history (the end of the output). */
  historyTailBytes?: number;
}

export interface RecordedAttempt {
  ctx: Context;
  attempt: number;
  shardIndex: number;
  /** Receives output as it is printed (masked and stored as it goes when the worker has an output store). */
  output(stream: OutputStreamName, chunk: Buffer): void;
  /** Secret values to mask in the streamed output. */
  maskInOutput(secrets: readonly string[]): void;
  /** Records how the attempt ended; `errorType` (the failure's type, e.g. `ShellExitCode`) goes to the log only. */
  finish(end: Omit<AttemptEnd, 'runId' | 'shardIndex' | 'attempt'> & { errorType?: string; isolationSetupMs?: number }): Promise<void>;
}

/**
 * The last `maxBytes` of a stream, for Temporal history: the full output is in
 * the run output store, and a history keeps its size bounded. `bytes` stays
 * what the task printed; `truncated` says the text is not all of it.
 */
export function tailOf(stream: CapturedStream, maxBytes: number | undefined): CapturedStream {
  if (maxBytes === undefined) return stream;
  const buf = Buffer.from(stream.text, 'utf8');
  if (buf.length <= maxBytes) return stream;
  // A cut inside a multi-byte character leaves a fragment the decoder replaces with U+FFFD.
  return { text: buf.subarray(buf.length - maxBytes).toString('utf8'), truncated: true, bytes: stream.bytes };
}

/**
 * Runs one executor attempt between its start and end records. An error
 * thrown before the attempt reported its end (secrets that do not decrypt,
 * a URL placeholder without a value) is recorded as the attempt's failure
 * before it propagates, so no attempt is left looking lost.
 */
/** How long an attempt's own record writes wait for an unreachable database before the attempt fails. */
const RECORD_OUTAGE_MS = 15 * 60_000;

/**
 * Runs a record write of the attempt; while PostgreSQL is unreachable, tries again (1 s doubling to 10 s,
 * for up to RECORD_OUTAGE_MS) and heartbeats meanwhile, so a database outage neither fails the attempt (which
 * would spend one of the task's own retries, and after its command ran, run it again) nor lets Temporal time it
 * out. Other errors, and a cancelled activity, fail at once.
 */
export async function recordWrite<T>(
  ctx: Context,
  write: () => Promise<T>,
  log?: { warn(obj: object, msg: string): void },
  fields: Record<string, unknown> = {},
): Promise<T> {
  const deadline = Date.now() + RECORD_OUTAGE_MS;
  for (let wait = 1000, tries = 1; ; wait = Math.min(wait * 2, 10_000), tries++) {
    try {
      return await write();
    } catch (err) {
      if (!isDatabaseUnavailable(err) || Date.now() + wait > deadline || ctx.cancellationSignal.aborted) throw err;
      if (tries === 1) log?.warn({ ...fields, error: (err as Error).message }, 'database unreachable: the attempt record write waits for it');
      ctx.heartbeat();
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

export async function inRecordedAttempt<T>(
  deps: Pick<ExecutorActivityDeps, 'recorder' | 'workerIdentity' | 'output' | 'observer' | 'log'> & { heartbeatMs?: number },
  ref: ShardRef,
  executor: 'shell' | 'http',
  body: (a: RecordedAttempt) => Promise<T>,
  isolation: 'sandbox' | 'none' | null = null,
): Promise<T> {
  const ctx = Context.current();
  const attempt = ctx.info.attempt;
  const shardIndex = ref.shardIndex ?? 0;
  const startedAt = Date.now();
  const scheduledAt = ctx.info.currentAttemptScheduledTimestampMs;
  const queuedMs = Number.isFinite(scheduledAt) && scheduledAt > 0 ? Math.max(0, startedAt - scheduledAt) : null;
  const logFields: Record<string, unknown> = {
    tenantId: ref.tenantId,
    runId: ref.runId,
    shardIndex,
    attempt,
    executor,
    workflowId: ctx.info.workflowExecution?.workflowId,
  };
  const { taskId } = await recordWrite(
    ctx,
    () =>
      deps.recorder.startAttempt({
        runId: ref.runId,
        tenantId: ref.tenantId,
        shardIndex,
        attempt,
        workerIdentity: deps.workerIdentity,
        isolation,
      }),
    deps.log,
    logFields,
  );
  if (taskId) logFields.taskId = taskId;
  deps.log?.info({ ...logFields, queuedMs }, 'attempt started');
  const live = deps.output
    ? new LiveOutput({
        store: deps.output.store,
        ref: { runId: ref.runId, tenantId: ref.tenantId, shardIndex, attempt },
        capBytes: deps.output.capBytes,
        flushMs: deps.output.flushMs,
        onWriteError: (err) =>
          deps.log?.warn({ ...logFields, error: errorFields(err) }, 'run output not stored yet; the write is retried at the next flush'),
      })
    : null;
  if (live) await deps.output?.store.notify(ref.runId).catch(() => undefined);
  let finished = false;
  const finish: RecordedAttempt['finish'] = async ({ errorType, isolationSetupMs, ...end }) => {
    finished = true;
    // Storing the last output may wait on a slow database: the attempt keeps heartbeating meanwhile, or
    // Temporal would time it out and run the finished task again.
    const beat = live && deps.heartbeatMs ? setInterval(() => ctx.heartbeat(), deps.heartbeatMs) : null;
    const stored = live ? await live.close().finally(() => beat && clearInterval(beat)) : null;
    await recordWrite(ctx, () => deps.recorder.finishAttempt({ runId: ref.runId, shardIndex, attempt, ...end, outputStore: stored }), deps.log, logFields);
    if (live) await deps.output?.store.notify(ref.runId).catch(() => undefined);
    const durationMs = Date.now() - startedAt;
    // What the task printed (an HTTP body as received): the executor's count, else the store's.
    const stdoutBytes = end.stdout?.bytes ?? stored?.stdout.bytes ?? 0;
    const stderrBytes = end.stderr?.bytes ?? stored?.stderr.bytes ?? 0;
    deps.observer?.attemptEnded({
      executor,
      status: end.status,
      durationMs,
      queuedMs,
      stdoutBytes,
      stderrBytes,
      resourceLimit: end.resourceLimit ?? null,
      ...(isolationSetupMs !== undefined ? { isolationSetupMs } : {}),
    });
    deps.log?.info(
      {
        ...logFields,
        status: end.status,
        durationMs,
        exitCode: end.exitCode,
        httpStatus: end.httpStatus,
        stdoutBytes,
        stderrBytes,
        ...(end.resourceLimit ? { resourceLimit: end.resourceLimit } : {}),
        ...(isolationSetupMs !== undefined ? { isolationSetupMs } : {}),
        ...(end.error ? { error: { message: end.error, type: errorType ?? 'Error' } } : {}),
      },
      'attempt ended',
    );
  };
  try {
    return await body({
      ctx,
      attempt,
      shardIndex,
      finish,
      output: (stream, chunk) => live?.push(stream, chunk),
      maskInOutput: (secrets) => live?.setSecrets(secrets),
    });
  } catch (err) {
    if (!finished) {
      const { message, type } = errorFields(err);
      await finish({ status: 'failed', exitCode: null, httpStatus: null, error: message, errorType: type, stdout: null, stderr: null });
    }
    throw err;
  }
}

/** An error's message and type (an ApplicationFailure's `type`, else its class name), as the log schema has them. */
export function errorFields(err: unknown): { message: string; type: string } {
  if (!(err instanceof Error)) return { message: String(err), type: typeof err };
  const { message, type } = serializeError(err) as { message: string; type: string };
  return { message, type };
}
