import { request as httpRequest } from 'node:http';
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import type { CapturedStream, RunOutputs } from '@task-scheduler/contracts';
import { PIPELINE_LIMITS } from '@task-scheduler/contracts';
import { OutputCapture } from '../shell/output-capture';
import { jsonBodyOutput, maskOutputs } from '../shell/task-outputs';
import { AddressGuard, AddressRefusedError } from './address-guard';
import type { HostResolver } from './address-guard';

export interface HttpExecutorOptions {
  /** Bytes of the response body kept; the rest is read and counted, not kept. */
  responseCapBytes: number;
  /** CIDRs that may be reached although they are not public (e.g. an internal service network). */
  allowCidrs: string[];
  /** Redirects followed before the last 3xx response is returned as it is. Default 5. */
  maxRedirects?: number;
  userAgent?: string;
  /** Replaces the system resolver (`dns.lookup`); every address it returns is still checked. */
  resolve?: HostResolver;
}

export interface HttpRunRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  /** Budget for the whole exchange, redirects included: connect, headers and body. */
  timeoutMs: number;
  /** Aborting stops the request (cancellation). */
  signal?: AbortSignal;
  /** Further headers (lower-case names, e.g. the task's secret headers) not sent on after a redirect to another origin. */
  sensitiveHeaders?: readonly string[];
  /** The task's secret values (its secret headers'): masked as `***` in the outputs. */
  secretValues?: readonly string[];
}

/**
 * - `response`: a response was received (any status); the only outcome with a status, except
 *   `timed_out`/`cancelled` that came after the headers.
 * - `refused`: the URL, or a redirect, points at an address the guard refuses; nothing was sent to it.
 * - `invalid`: the URL cannot be requested anywhere (syntax, scheme, credentials, bad Location).
 */
export type HttpOutcome = 'response' | 'refused' | 'invalid' | 'network_error' | 'timed_out' | 'cancelled';

export interface HttpRunResult {
  outcome: HttpOutcome;
  status: number | null;
  /** Lower-case names; repeated headers joined with ', '. */
  headers: Record<string, string>;
  body: CapturedStream;
  retryAfterMs: number | null;
  /** Why the request failed; also set on a 3xx `response` returned because the redirect limit was reached. */
  error: string | null;
  durationMs: number;
  /** The last URL requested or refused (after redirects). */
  finalUrl: string;
  /**
   * What the exchange hands to later pipeline steps, for a `response`: `{ status, body }`, the body
   * parsed as JSON when it is JSON of at most PIPELINE_LIMITS.maxOutputBytes, else null. Null otherwise.
   */
  outputs: RunOutputs | null;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
// Meant for the origin that was asked for, not for wherever it redirects (curl and fetch drop credentials too).
const CROSS_ORIGIN_DROPPED = ['authorization', 'cookie', 'proxy-authorization', 'host'];
const BODY_HEADERS = ['content-type', 'content-length', 'content-encoding', 'content-language', 'content-location', 'transfer-encoding'];

type Hop =
  | { kind: 'response'; res: IncomingMessage; req: ClientRequest }
  | { kind: 'refused'; error: string }
  | { kind: 'invalid'; error: string }
  | { kind: 'network_error'; error: string }
  | { kind: 'stopped' };

interface Target {
  url: URL;
  /** Hostname without IPv6 brackets. */
  host: string;
}

/** Parses `Retry-After` as delta-seconds or an HTTP date; a date in the past gives 0. */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | null {
  if (value === undefined) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

function flattenHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/**
 * Makes one HTTP(S) request for a task, following redirects by hand so every
 * hop is checked by an {@link AddressGuard}: an IP literal is checked before
 * connecting (Node does not call `lookup` for those), a hostname is checked on
 * each address it resolves to, at connect time. Each request gets its own
 * socket (`agent: false`), so a connection checked for one hop is never
 * reused for another. Expected failures are returned as an outcome, never thrown.
 */
export class HttpExecutor {
  private readonly guard: AddressGuard;
  private readonly maxRedirects: number;
  private readonly userAgent: string;

  constructor(private readonly options: HttpExecutorOptions) {
    this.guard = new AddressGuard(options.allowCidrs, { resolve: options.resolve });
    this.maxRedirects = options.maxRedirects ?? 5;
    this.userAgent = options.userAgent ?? 'task-scheduler-http-executor';
  }

  async run(req: HttpRunRequest): Promise<HttpRunResult> {
    const started = Date.now();
    const body = new OutputCapture(this.options.responseCapBytes);
    // Kept apart from `body`: OUTPUT_CAP_BYTES may be smaller than what outputs take (or larger).
    const whole = new OutputCapture(PIPELINE_LIMITS.maxOutputBytes);
    const sink = (chunk: Buffer): void => {
      body.push(chunk);
      whole.push(chunk);
    };
    const stop = new AbortController();
    let stopCause: 'timed_out' | 'cancelled' | null = null;
    const stopWith = (cause: 'timed_out' | 'cancelled') => {
      if (stopCause !== null) return;
      stopCause = cause;
      stop.abort();
    };
    const onCancel = () => stopWith('cancelled');
    const timer = setTimeout(() => stopWith('timed_out'), req.timeoutMs);
    if (req.signal?.aborted) onCancel();
    else req.signal?.addEventListener('abort', onCancel, { once: true });

    let finalUrl = req.url;
    let status: number | null = null;
    let headers: Record<string, string> = {};
    const finish = (outcome: HttpOutcome, error: string | null): HttpRunResult => ({
      outcome,
      status,
      headers,
      body: body.result(),
      retryAfterMs: parseRetryAfter(headers['retry-after']),
      error,
      durationMs: Date.now() - started,
      finalUrl,
      outputs:
        outcome === 'response' && status !== null
          ? maskOutputs({ status, body: whole.result().truncated ? null : jsonBodyOutput(whole.keptBytes()) }, req.secretValues ?? [])
          : null,
    });
    const stopped = (): HttpRunResult =>
      stopCause === 'timed_out'
        ? finish('timed_out', `request exceeded its timeout of ${req.timeoutMs}ms`)
        : finish('cancelled', 'request was cancelled');

    try {
      let method = req.method.toUpperCase();
      let sendBody = req.body;
      const sendHeaders: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) sendHeaders[name.toLowerCase()] = value;
      let previous: URL | null = null;

      for (let redirects = 0; ; redirects++) {
        if (stopCause !== null) return stopped();
        const target = this.target(finalUrl, previous);
        if ('error' in target) {
          finalUrl = target.shownUrl;
          return finish('invalid', target.error);
        }
        finalUrl = target.url.href;
        const hop = await this.send(target, method, sendHeaders, sendBody, stop.signal);
        const via = redirects === 0 ? '' : `redirect ${redirects} to ${finalUrl}: `;
        if (hop.kind === 'stopped') return stopped();
        if (hop.kind !== 'response') return finish(hop.kind, via + hop.error);

        status = hop.res.statusCode ?? null;
        headers = flattenHeaders(hop.res.headers);
        const location = headers['location'];
        if (status !== null && REDIRECT_STATUSES.has(status) && location !== undefined) {
          if (redirects >= this.maxRedirects) {
            const outcome = await this.readBody(hop, sink, stop.signal);
            if (outcome === 'stopped') return stopped();
            return finish(
              outcome === 'ok' ? 'response' : 'network_error',
              `not following redirect to ${location}: limit of ${this.maxRedirects} redirects reached`,
            );
          }
          // The redirect body is not wanted; the socket is ours alone, so dropping it costs nothing.
          hop.req.destroy();
          if (status === 303 || ((status === 301 || status === 302) && method === 'POST')) {
            if (method !== 'HEAD') method = 'GET';
            sendBody = undefined;
            for (const name of BODY_HEADERS) delete sendHeaders[name];
          }
          let next: URL;
          try {
            next = new URL(location, target.url);
          } catch {
            return finish('invalid', `redirect ${redirects + 1}: Location "${location}" is not a valid URL`);
          }
          if (next.origin !== target.url.origin) {
            for (const name of [...CROSS_ORIGIN_DROPPED, ...(req.sensitiveHeaders ?? [])]) delete sendHeaders[name];
          }
          previous = target.url;
          finalUrl = next.href;
          status = null;
          headers = {};
          continue;
        }

        const outcome = await this.readBody(hop, sink, stop.signal);
        if (outcome === 'stopped') return stopped();
        return finish(
          outcome === 'ok' ? 'response' : 'network_error',
          outcome === 'ok' ? null : `response body was cut short: ${outcome.error}`,
        );
      }
    } finally {
      clearTimeout(timer);
      req.signal?.removeEventListener('abort', onCancel);
    }
  }

  private target(url: string, previous: URL | null): Target | { error: string; shownUrl: string } {
    const prefix = previous === null ? '' : 'redirect target ';
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return { error: `${prefix}"${url}" is not a valid URL`, shownUrl: url };
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      return {
        error: `${prefix}${parsed.href} has scheme ${parsed.protocol.slice(0, -1)}; only http and https are allowed`,
        shownUrl: parsed.href,
      };
    }
    // Credentials in a URL would be sent as Basic auth and stored with the task and every run's
    // record in clear; they belong in a header filled from a secret. The `user@host` form is also
    // a classic way to make a URL read as one host while it connects to another.
    if (parsed.username !== '' || parsed.password !== '') {
      parsed.username = '';
      parsed.password = '';
      return {
        error: `${prefix}URL must not contain credentials (${parsed.href}); send an Authorization header instead`,
        shownUrl: parsed.href,
      };
    }
    const host = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
    return { url: parsed, host };
  }

  private send(
    target: Target,
    method: string,
    headers: Record<string, string>,
    body: string | Buffer | undefined,
    signal: AbortSignal,
  ): Promise<Hop> {
    const { url, host } = target;
    const literal = isIP(host) !== 0;
    if (literal) {
      const verdict = this.guard.check(host);
      if (!verdict.allowed) return Promise.resolve({ kind: 'refused', error: verdict.reason });
    }
    const outgoing: OutgoingHttpHeaders = { ...headers };
    if (outgoing['user-agent'] === undefined) outgoing['user-agent'] = this.userAgent;
    if (body !== undefined && outgoing['content-length'] === undefined && outgoing['transfer-encoding'] === undefined) {
      outgoing['content-length'] = Buffer.byteLength(body);
    }
    const https = url.protocol === 'https:';
    const options: RequestOptions & { servername?: string } = {
      method,
      host,
      port: url.port === '' ? (https ? 443 : 80) : Number(url.port),
      path: url.pathname + url.search,
      headers: outgoing,
      agent: false,
      lookup: this.guard.lookup,
    };
    // SNI and certificate checks follow the URL's host, not a Host header the task may set.
    // '' tells Node there is no name to send for an IP literal (RFC 6066 forbids IPs in SNI).
    if (https) options.servername = literal ? '' : host.replace(/\.$/, '');

    return new Promise<Hop>((resolve) => {
      let settled = false;
      const settle = (hop: Hop) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onStop);
        resolve(hop);
      };
      let request: ClientRequest;
      try {
        request = (https ? httpsRequest : httpRequest)(options);
      } catch (err) {
        // Node validates the method and header values synchronously.
        resolve({ kind: 'invalid', error: errorText(err) });
        return;
      }
      request.on('error', (err) => {
        if (err instanceof AddressRefusedError) settle({ kind: 'refused', error: err.message });
        else settle({ kind: 'network_error', error: errorText(err) });
      });
      request.on('response', (res) => settle({ kind: 'response', res, req: request }));
      const onStop = () => {
        request.destroy();
        settle({ kind: 'stopped' });
      };
      if (signal.aborted) {
        onStop();
        return;
      }
      signal.addEventListener('abort', onStop, { once: true });
      request.end(body);
    });
  }

  private readBody(
    hop: { res: IncomingMessage; req: ClientRequest },
    sink: (chunk: Buffer) => void,
    signal: AbortSignal,
  ): Promise<'ok' | 'stopped' | { error: string }> {
    const { res, req } = hop;
    return new Promise((resolve) => {
      let settled = false;
      const settle = (result: 'ok' | 'stopped' | { error: string }) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onStop);
        req.destroy();
        resolve(result);
      };
      const onStop = () => settle('stopped');
      if (signal.aborted) {
        onStop();
        return;
      }
      signal.addEventListener('abort', onStop, { once: true });
      res.on('data', sink);
      res.on('end', () => settle('ok'));
      res.on('error', (err) => settle({ error: errorText(err) }));
      res.on('close', () => {
        if (!res.complete) settle({ error: 'connection closed before the end of the body' });
      });
      req.on('error', (err) => settle({ error: errorText(err) }));
    });
  }
}
