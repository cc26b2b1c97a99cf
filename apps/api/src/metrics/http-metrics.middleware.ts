import type { NextFunction, Request, Response } from 'express';
import type { MetricsService } from './metrics.service';

/** Nest answers a request no route matched from a catch-all route (`/{*path}` on Express 5). */
const CATCH_ALL = /^\/?(\*|\{\*\w+\}|\(\.\*\))$/;

/**
 * Times every request from its arrival to its response, including those refused before a route (bad bodies, 404)
 * or by the auth guard. The `route` label is Express's route template (`/v1/runs/:id`), never the URL, so ids do
 * not become series; a request no route matched is `unmatched`.
 */
export function httpMetricsMiddleware(metrics: MetricsService) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const end = metrics.httpDuration.startTimer();
    let done = false;
    const observe = (): void => {
      if (done) return;
      done = true;
      // A followed output stream lasts as long as its attempt: a duration, not a latency. Left out.
      if (String(res.getHeader('content-type') ?? '').startsWith('text/event-stream')) return;
      const template = (req.route as { path?: unknown } | undefined)?.path;
      end({
        method: req.method,
        route: typeof template === 'string' && !CATCH_ALL.test(template) ? `${req.baseUrl}${template}` : 'unmatched',
        status_code: String(res.statusCode),
      });
    };
    res.once('finish', observe);
    // A client that goes away before the answer is written: counted with the status the response had then.
    res.once('close', observe);
    next();
  };
}
