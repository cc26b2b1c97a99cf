import { ArgumentsHost, Catch, HttpException, Logger } from '@nestjs/common';
import type { ExceptionFilter } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AuditService } from '../audit/audit.service';
import { routeOf } from '../auth/request-context';
import type { RequestContext } from '../auth/request-context';
import { ApiError, ErrorCode } from './api-error';
import type { ErrorBody } from './api-error';
import { isDatabaseUnavailable } from './db-errors';

/** Seconds a client waits before retrying when PostgreSQL is unreachable: pooled connections are remade per request. */
export const DATABASE_RETRY_AFTER_SECONDS = 1;

/** Turns any error into `{ error: { code, message, details? } }`; unknown errors become a 500 without internals. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as { type?: string; status?: number; statusCode?: number; message?: string };
  // Errors raised by the body parser before a route runs.
  if (e?.type === 'entity.parse.failed') return new ApiError(ErrorCode.MALFORMED_JSON, 'request body is not valid JSON');
  if (e?.type === 'entity.too.large') return new ApiError(ErrorCode.PAYLOAD_TOO_LARGE, 'request body is too large');
  if (e?.type === 'charset.unsupported' || e?.type === 'encoding.unsupported') {
    return new ApiError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'request body encoding is not supported', [
      { field: 'content-type', message: 'the body must be UTF-8 JSON without content-encoding' },
    ]);
  }
  if (err instanceof HttpException) {
    const status = err.getStatus();
    if (status === 404) return new ApiError(ErrorCode.ROUTE_NOT_FOUND, 'no such route');
    if (status === 413) return new ApiError(ErrorCode.PAYLOAD_TOO_LARGE, 'request body is too large');
    if (status >= 400 && status < 500) return new ApiError(ErrorCode.VALIDATION_FAILED, err.message);
  }
  // A lost or refused connection is the database's state, not a bug: the same request may succeed in a moment.
  // For a write, the transaction did not commit (or, after a workflow start, the workflow records the run itself).
  if (isDatabaseUnavailable(err)) {
    return new ApiError(ErrorCode.DATABASE_UNAVAILABLE, 'the database is unavailable; try again', [
      { message: 'PostgreSQL did not answer or dropped the connection', retryAfterSeconds: DATABASE_RETRY_AFTER_SECONDS },
    ]);
  }
  return new ApiError(ErrorCode.INTERNAL_ERROR, 'internal error');
}

export function errorBody(err: ApiError, requestId?: string): ErrorBody {
  return {
    error: {
      code: err.code,
      message: err.message,
      ...(err.details !== undefined ? { details: err.details } : {}),
      ...(requestId ? { requestId } : {}),
    },
  };
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

@Catch()
export class ApiErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('ApiErrorFilter');

  constructor(private readonly audit: AuditService) {}

  async catch(exception: unknown, host: ArgumentsHost): Promise<void> {
    const ctx = host.switchToHttp();
    const req = ctx.getRequest<Request & { id?: string; auth?: RequestContext }>();
    const res = ctx.getResponse<Response>();
    const apiError = toApiError(exception);
    if (apiError.code === ErrorCode.INTERNAL_ERROR) {
      this.logger.error({ err: exception, requestId: req.id }, 'unhandled error');
    }
    if (apiError.code === ErrorCode.DATABASE_UNAVAILABLE) {
      // The driver's message only: a QueryFailedError also carries the statement's parameters (hashes, secrets).
      const cause = exception instanceof Error ? exception.message : String(exception);
      this.logger.warn({ requestId: req.id, cause }, 'database unavailable');
    }
    // Refused changes are audited too (successful ones are audited inside their own transaction). Not when the
    // database is gone: that write would wait out the pool's connect timeout and then fail as well.
    if (req.auth && MUTATING.has(req.method) && apiError.code !== ErrorCode.DATABASE_UNAVAILABLE) {
      await this.audit
        .recordFailedMutation(req.auth, routeOf(req), apiError.code)
        .catch((err: unknown) => this.logger.error({ err, requestId: req.id }, 'could not write audit event'));
    }
    const retryAfter = apiError.details?.find((d) => typeof d.retryAfterSeconds === 'number')?.retryAfterSeconds;
    const retrying = apiError.code === ErrorCode.RATE_LIMITED || apiError.code === ErrorCode.DATABASE_UNAVAILABLE;
    if (retrying && retryAfter) res.setHeader('Retry-After', String(retryAfter));
    res.status(apiError.status).json(errorBody(apiError, req.id));
  }
}
