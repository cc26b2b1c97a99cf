import { Injectable } from '@nestjs/common';
import type { CallHandler, ExecutionContext, NestInterceptor } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { Observable } from 'rxjs';
import { map } from 'rxjs';

/**
 * `Location: <collection path>/<id>` on every 201 Created whose body has an `id`, as RFC 9110 asks of a creation;
 * routes that set their own Location (a run started elsewhere) keep it. The OpenAPI document states the header
 * on every 201 (common/openapi.ts).
 */
@Injectable()
export class LocationInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const http = context.switchToHttp();
    const req = http.getRequest<Request>();
    const res = http.getResponse<Response>();
    return next.handle().pipe(
      map((body: unknown) => {
        const id = (body as { id?: unknown } | null)?.id;
        if (req.method === 'POST' && res.statusCode === 201 && typeof id === 'string' && !res.getHeader('Location')) {
          res.setHeader('Location', `${req.baseUrl}${req.path.replace(/\/+$/, '')}/${encodeURIComponent(id)}`);
        }
        return body;
      }),
    );
  }
}
