/**
 * The HTTP edge of the input rules (see input-rules.ts): Express middleware that runs before routing,
 * so every route gets the same content-type, body and query checks.
 */
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { NextFunction, Request, Response } from 'express';
import { ApiError, ErrorCode } from './api-error';
import { errorBody } from './api-error.filter';
import { MAX_BODY_DEPTH, jsonProblem } from './input-rules';

/** RFC 9112: a request has a body when it says how long it is (and that is not 0) or that it is chunked. */
function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * The media types express.json parses. `application/merge-patch+json` (RFC 7396) is what every PATCH of the API
 * already means (fields left out are kept, `null` clears a nullable field), so a PATCH may say so; on other
 * methods it is refused. Other `+json` types are refused rather than read as plain JSON: `application/json-patch+json`
 * (RFC 6902) is a list of operations, and reading it as a document would do something else than the client meant.
 */
export const JSON_MEDIA_TYPES = ['application/json', 'application/merge-patch+json'];

/** A request with a body must say it is JSON: otherwise the body would be ignored and the request validated as empty. */
export function requireJsonBody(req: Request, _res: Response, next: NextFunction): void {
  if (!hasBody(req) || req.is('application/json') || (req.method === 'PATCH' && req.is('application/merge-patch+json'))) return next();
  const given = req.headers['content-type'];
  const expected = req.method === 'PATCH' ? 'application/json or application/merge-patch+json' : 'application/json';
  const message = given
    ? `request bodies must be ${expected}, not ${given.split(';')[0]!.trim().slice(0, 100)}`
    : `a request with a body needs the header content-type: ${expected}`;
  next(new ApiError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, message, [{ field: 'content-type', message: `must be ${expected}` }]));
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
  const problem = jsonProblem(body, '', { maxDepth: MAX_BODY_DEPTH });
  if (problem) return next(new ApiError(ErrorCode.VALIDATION_FAILED, problem.message, [problem]));
  next();
}

/**
 * Bounds of a parsed query string. Express 5's default parser ("simple", node:querystring) gives a flat object
 * whose values are strings, or arrays of strings for a repeated name: depth 2 at most. 3 leaves room if the
 * parser is ever switched to "extended" (qs, `a[b]=1`). No route reads more than a dozen names, so 200 values
 * in all (names, values and the containers) are ample and keep a hostile query string cheap to walk.
 */
export const MAX_QUERY_DEPTH = 3;
export const MAX_QUERY_VALUES = 200;

/** Query-string names and values follow the text rule too (`?cursor=%00`), within the bounds above. */
export function checkQuery(req: Request, _res: Response, next: NextFunction): void {
  const problem = jsonProblem(req.query, '', { maxDepth: MAX_QUERY_DEPTH, maxValues: MAX_QUERY_VALUES });
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
  // A request id of its own, like every other answer (the caller's could not be read).
  const requestId = randomUUID();
  const body = JSON.stringify(errorBody(apiError, requestId));
  socket.end(
    `HTTP/1.1 ${apiError.status} ${apiError.status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
      `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\n` +
      `connection: close\r\n\r\n${body}`,
  );
}
