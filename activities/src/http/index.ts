import { ApplicationFailure, Context } from '@temporalio/activity';
import type { AlertDelivery, ExecutorFailureDetails, HttpActivityInput, HttpActivityResult, HttpSpec } from '@task-scheduler/contracts';
import { HTTP_FAILURE_TYPES } from '@task-scheduler/contracts';
import { maskSecrets, secretValuesOf } from '@task-scheduler/core';
import { attemptStatusOf, inRecordedAttempt, maskStream, tailOf, unsealTaskSecrets } from '../executor-support';
import type { ExecutorActivityDeps } from '../executor-support';
import { traceparentEntry } from '../trace-context';
import { HttpExecutor } from './http-executor';
import type { HttpExecutorOptions, HttpRunResult } from './http-executor';

export { AddressGuard, AddressRefusedError } from './address-guard';
export { HttpExecutor } from './http-executor';
export type { HttpExecutorOptions, HttpRunRequest, HttpRunResult } from './http-executor';

export interface HttpActivityDeps extends ExecutorActivityDeps {
  executor: HttpExecutorOptions;
}

/** Longest wait a `Retry-After` may impose on the next attempt. */
const MAX_RETRY_AFTER_MS = 3_600_000;

/** Fills `{name}` placeholders of a URL template with URL-encoded values. */
function fillUrl(template: string, variables: Record<string, string>): string {
  return template.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_match, name: string) => {
    const value = variables[name];
    if (value === undefined) {
      throw ApplicationFailure.nonRetryable(`URL placeholder {${name}} has no value`, HTTP_FAILURE_TYPES.invalidRequest);
    }
    return encodeURIComponent(value);
  });
}

function encodeBody(body: unknown, headers: Record<string, string>): string | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return body;
  if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
  return JSON.stringify(body);
}

function isExpected(spec: HttpSpec, status: number): boolean {
  return spec.expectedStatus?.length ? spec.expectedStatus.includes(status) : status >= 200 && status < 300;
}

/** Turns a non-success executor result into the ApplicationFailure the workflow classifies. */
function failureOf(r: HttpRunResult, message: string, details: ExecutorFailureDetails): ApplicationFailure {
  const retryAfter = r.retryAfterMs !== null ? Math.min(Math.max(r.retryAfterMs, 0), MAX_RETRY_AFTER_MS) : undefined;
  switch (r.outcome) {
    case 'response': {
      const status = r.status as number;
      const retryable = status >= 500 || status === 429 || status === 408;
      return ApplicationFailure.create({
        message,
        type: retryable ? HTTP_FAILURE_TYPES.retryableStatus : HTTP_FAILURE_TYPES.unexpectedStatus,
        nonRetryable: !retryable,
        details: [details],
        nextRetryDelay: retryable && retryAfter !== undefined ? retryAfter : undefined,
      });
    }
    case 'refused':
      return ApplicationFailure.create({ message, type: HTTP_FAILURE_TYPES.addressRefused, nonRetryable: true, details: [details] });
    case 'invalid':
      return ApplicationFailure.create({ message, type: HTTP_FAILURE_TYPES.invalidRequest, nonRetryable: true, details: [details] });
    case 'timed_out':
      return ApplicationFailure.create({ message, type: HTTP_FAILURE_TYPES.timeout, details: [details] });
    default:
      return ApplicationFailure.create({ message, type: HTTP_FAILURE_TYPES.network, details: [details] });
  }
}

function describe(r: HttpRunResult, timeoutSeconds: number): string {
  switch (r.outcome) {
    case 'response':
      return `unexpected HTTP status ${r.status}`;
    case 'timed_out':
      return `request exceeded its timeout of ${timeoutSeconds}s`;
    case 'cancelled':
      return 'run was cancelled; the request was aborted';
    default:
      return r.error ?? r.outcome;
  }
}

/**
 * HTTP executor activities, hosted by workers of the `http` task queue: task
 * requests (recorded per attempt, secrets masked) and alert webhook calls.
 * Both go through the SSRF guard of {@link HttpExecutor}.
 */
export function createHttpActivities(deps: HttpActivityDeps) {
  const executor = new HttpExecutor(deps.executor);
  return {
    runHttpRequest: (input: HttpActivityInput): Promise<HttpActivityResult> =>
      inRecordedAttempt(deps, input, 'http', async ({ ctx, attempt, shardIndex, finish, output }) => {
        const secretHeaders = unsealTaskSecrets(input.secrets, deps.secretsKey, input.tenantId).headers ?? {};
        const secrets = secretValuesOf({ headers: secretHeaders });
        const headers: Record<string, string> = {
          ...(input.http.headers ?? {}),
          ...secretHeaders,
          'idempotency-key': input.idempotencyKey,
          'x-task-run-id': input.runId,
          'x-task-attempt': String(attempt),
          'x-shard-index': String(shardIndex),
          'x-shard-total': String(input.shardTotal),
          // This attempt's RunActivity span (tracing on only); like the headers above, it replaces the task's own.
          ...traceparentEntry('traceparent'),
        };
        const url = fillUrl(input.http.url, input.http.variables ?? {});
        const body = encodeBody(input.http.body, headers);
        const heartbeat = setInterval(() => ctx.heartbeat(), deps.heartbeatMs);
        let raw: HttpRunResult;
        try {
          raw = await executor.run({
            method: input.http.method,
            url,
            headers,
            body,
            timeoutMs: input.timeoutSeconds * 1000,
            signal: ctx.cancellationSignal,
            sensitiveHeaders: Object.keys(secretHeaders).map((h) => h.toLowerCase()),
            secretValues: secrets,
          });
        } finally {
          clearInterval(heartbeat);
        }
        const bodyOut = maskStream(raw.body, secrets);
        // The body (as captured, masked) is the attempt's output in the run output store; history gets its end.
        if (bodyOut.text) output('stdout', Buffer.from(bodyOut.text, 'utf8'));
        const bodyTail = tailOf(bodyOut, deps.historyTailBytes);
        const ok = raw.outcome === 'response' && isExpected(input.http, raw.status as number);
        const error = ok ? null : maskSecrets(describe(raw, input.timeoutSeconds), secrets);
        const failure = ok
          ? null
          : failureOf(raw, error as string, { exitCode: null, httpStatus: raw.status, stdout: bodyTail, stderr: null });
        await finish({
          status: attemptStatusOf(ok, raw.outcome),
          exitCode: null,
          httpStatus: raw.status,
          error,
          ...(failure ? { errorType: failure.type ?? 'Error' } : {}),
          stdout: bodyOut,
          stderr: null,
        });
        if (ok) {
          return {
            exitCode: null,
            httpStatus: raw.status as number,
            stdout: bodyTail,
            stderr: null,
            durationMs: raw.durationMs,
            // A sharded run has no outputs (which shard's would it be?): its history holds none of them.
            outputs: (input.shardTotal ?? 1) > 1 ? null : raw.outputs,
          };
        }
        if (raw.outcome === 'cancelled') ctx.cancellationSignal.throwIfAborted();
        throw failure as ApplicationFailure;
      }),

    /** POSTs an alert; any 2xx is delivered, the rest is retried by Temporal (4xx other than 408/429 is not). */
    async deliverAlert(delivery: AlertDelivery): Promise<void> {
      const ctx = Context.current();
      const r = await executor.run({
        method: 'POST',
        url: delivery.url,
        headers: { 'content-type': 'application/json', 'idempotency-key': delivery.idempotencyKey },
        body: JSON.stringify(delivery.payload),
        timeoutMs: 20_000,
        signal: ctx.cancellationSignal,
      });
      if (r.outcome === 'response' && (r.status as number) >= 200 && (r.status as number) < 300) return;
      throw failureOf(r, `alert webhook: ${describe(r, 20)}`, { exitCode: null, httpStatus: r.status, stdout: r.body, stderr: null });
    },
  };
}

export type HttpActivities = ReturnType<typeof createHttpActivities>;
