import { Injectable } from '@nestjs/common';
import type { CallHandler, ExecutionContext, NestInterceptor } from '@nestjs/common';
import type { Response } from 'express';
import type { Observable } from 'rxjs';
import { map } from 'rxjs';
import { etagOf } from './task-definition';

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

/** The tasks controller's name for it. */
export const TaskEtagInterceptor = VersionEtagInterceptor;
