/** Versioned resources (tasks, pipelines): request hashes, ETags and If-Match, in one place. */
import { Injectable } from '@nestjs/common';
import type { CallHandler, ExecutionContext, NestInterceptor } from '@nestjs/common';
import type { Response } from 'express';
import type { Observable } from 'rxjs';
import { map } from 'rxjs';

/** JSON with object keys sorted and undefined members left out, so equal values compare equal whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    return `{${Object.keys(obj)
      .filter((k) => obj[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/**
 * Parses `If-Match` against the task's version (its ETag is `"<version>"`).
 * Absent: no precondition. `*` matches any existing task; otherwise one of
 * the listed entity tags must be the current one. The comparison is strong
 * (RFC 9110 §13.1.1): a weak tag `W/"…"` never matches. Returns whether it holds.
 */
export function ifMatchHolds(header: string | undefined, version: number): boolean {
  if (header === undefined) return true;
  const text = header.trim();
  if (text === '*') return true;
  return text
    .split(',')
    .map((t) => t.trim())
    .some((t) => t === `"${version}"`);
}

/** The ETag of a version of a task or pipeline. */
export function etagOf(version: number): string {
  return `"${version}"`;
}

/**
 * `ETag: "<version>"` on every route of a versioned resource (tasks, pipelines) whose answer is one resource
 * (create, read, change, disable, enable): the one place that derives the tag from the body's `version`.
 * Lists and the delete answer have no top-level `version` and get none.
 */
@Injectable()
export class VersionEtagInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const res = context.switchToHttp().getResponse<Response>();
    return next.handle().pipe(
      map((body: unknown) => {
        const version = (body as { version?: unknown } | null)?.version;
        if (Number.isInteger(version)) res.setHeader('ETag', etagOf(version as number));
        return body;
      }),
    );
  }
}
