/**
 * The HTTP edge of the input rules (see input-rules.ts): Express middleware that runs before routing,
 * so every route gets the same content-type, body and query checks.
 */
import type { Duplex } from 'node:stream';
import type { NextFunction, Request, Response } from 'express';
import { ApiError, ErrorCode } from './api-error';
import { errorBody } from './api-error.filter';
import { MAX_BODY_DEPTH, MAX_BODY_VALUES, jsonProblem } from './input-rules';

/** RFC 9112: a request has a body when it says how long it is (and that is not 0) or that it is chunked. */
function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** A request with a body must say it is JSON: otherwise the body would be ignored and the request validated as empty. */
export function requireJsonBody(req: Request, _res: Response, next: NextFunction): void {
  if (!hasBody(req) || req.is('application/json')) return next();
  const given = req.headers['content-type'];
  const message = given
    ? `request bodies must be application/json, not ${given.split(';')[0]!.trim().slice(0, 100)}`
    : 'a request with a body needs the header content-type: application/json';
  next(new ApiError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, message, [{ field: 'content-type', message: 'must be application/json' }]));
}

/** A parsed body must be one JSON object that meets the input rules. */
export function checkBody(req: Request, _res: Response, next: NextFunction): void {
  const body: unknown = req.body;
  if (body === undefined) return next();
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return next(
      new ApiError(ErrorCode.VALIDATION_FAILED, 'request body must be a JSON object', [
        { field: 'body', message: 'must be a JSON object' },
      ]),
    );
  }
  const problem = jsonProblem(body, '', { maxDepth: MAX_BODY_DEPTH, maxValues: MAX_BODY_VALUES });
  if (problem) return next(new ApiError(ErrorCode.VALIDATION_FAILED, problem.message, [problem]));
  next();
}

/** Query-string names and values follow the text rule too (`?cursor=%00`). */
export function checkQuery(req: Request, _res: Response, next: NextFunction): void {
  const problem = jsonProblem(req.query, '', { maxDepth: 3, maxValues: 200 });
  if (problem) return next(new ApiError(ErrorCode.VALIDATION_FAILED, `query string: ${problem.message}`, [problem]));
  next();
}

/**
 * The answer to a request Node's HTTP parser refused before Express saw it (e.g. a control character in a
 * header value, which RFC 9110 forbids), in the API's error format; listener of the server's `clientError`.
 */
export function answerClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const apiError =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? new ApiError(ErrorCode.HEADERS_TOO_LARGE, 'the request headers are too large')
      : new ApiError(ErrorCode.MALFORMED_REQUEST, 'the request is not valid HTTP (a header name or value holds a character HTTP forbids)', [
          { field: 'headers', message: 'header values must not contain control characters other than tab' },
        ]);
  const body = JSON.stringify(errorBody(apiError));
  socket.end(
    `HTTP/1.1 ${apiError.status} ${apiError.status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
      `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
