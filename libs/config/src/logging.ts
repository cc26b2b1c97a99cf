import { hostname } from 'node:os';
import { trace } from '@opentelemetry/api';
import type { LoggerOptions } from 'pino';
import type { AppConfig } from './index';

/**
 * Keys never written to a log, at the top level or one level down (pino's `*.key`): credentials of requests,
 * and the Temporal activity task token, which the SDK puts in its activity log metadata (a token completes
 * the activity for whoever holds it).
 */
const REDACTED_KEYS = ['taskToken', 'authorization', 'cookie', 'x-api-key', 'password', 'secretEnv', 'secretHeaders', 'secrets'];

/** pino-pretty is a development dependency: without it (a production install) `pretty` falls back to JSON. */
function prettyAvailable(): boolean {
  try {
    require.resolve('pino-pretty');
    return true;
  } catch {
    process.stderr.write('LOG_FORMAT=pretty needs the pino-pretty package (a development dependency): logging JSON\n');
    return false;
  }
}

/** An error as log fields: message, type and stack (an Error's own properties are not enumerable, so `{}` otherwise). */
export function serializeError<T>(
  err: T,
): T | { message: string; type: string; stack?: string; cause?: { message: string; type: string } } {
  if (!(err instanceof Error)) return err;
  const e = err as Error & { type?: string; cause?: unknown };
  return {
    message: e.message,
    type: e.type ?? e.name,
    ...(e.stack ? { stack: e.stack } : {}),
    ...(e.cause instanceof Error ? { cause: { message: e.cause.message, type: e.cause.name } } : {}),
  };
}

/**
 * The one log schema of the API and the worker (docs/operations.md, "Logs"): JSON lines with `level` as a
 * word, `time` in ISO 8601, `service`, `msg`, and where they apply `tenantId`, `runId`, `taskId`, `attempt`,
 * `requestId`; `traceId` and `spanId` of the active span when tracing is on; errors as `{ message, type }`.
 * `LOG_FORMAT=pretty` prints the same records as readable lines (pino-pretty, a development dependency).
 */
export function loggerOptions(service: string, config: Pick<AppConfig, 'LOG_LEVEL' | 'LOG_FORMAT'>): LoggerOptions {
  return {
    level: config.LOG_LEVEL,
    base: { service, pid: process.pid, hostname: hostname() },
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
    messageKey: 'msg',
    formatters: { level: (label) => ({ level: label }) },
    serializers: { err: serializeError, error: serializeError },
    redact: {
      paths: [
        ...REDACTED_KEYS.flatMap((k) => (/^[A-Za-z_]\w*$/.test(k) ? [k, `*.${k}`] : [`["${k}"]`, `*["${k}"]`])),
        'req.headers.authorization',
        'req.headers.cookie',
        'req.headers["x-api-key"]',
      ],
      censor: '[redacted]',
    },
    mixin() {
      const span = trace.getActiveSpan()?.spanContext();
      return span && span.traceId !== '00000000000000000000000000000000' ? { traceId: span.traceId, spanId: span.spanId } : {};
    },
    ...(config.LOG_FORMAT === 'pretty' && prettyAvailable()
      ? {
          transport: {
            target: 'pino-pretty',
            options: { singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service', messageKey: 'msg' },
          },
        }
      : {}),
  };
}
