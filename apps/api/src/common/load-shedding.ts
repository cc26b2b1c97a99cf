/**
 * Load shedding: an API process works on at most `API_MAX_IN_FLIGHT` requests at once. Past that bound a request
 * is answered at once with 503 OVERLOADED and `Retry-After: 1`, before authentication or any database work, instead
 * of queueing behind the others until the client gives up (docs/performance.md, scenario 5: without a bound, 200
 * requests a second on two cores queued for 90 s and most connections failed).
 *
 * A request counts from the moment its body has been read (a slow sender holds a socket, not a slot) until its
 * response is finished or its connection closed. Health checks and metrics are never refused, so that probes and
 * scrapers still see an overloaded process; a followed output stream gives its slot back once it starts streaming
 * (followers have their own bound per tenant).
 */
import type { NextFunction, Request, Response } from 'express';
import type { MetricsService } from '../metrics/metrics.service';
import { ApiError, ErrorCode } from './api-error';
import { errorBody } from './api-error.filter';
import { PROBE_PATHS } from './probe-paths';

const RELEASE = Symbol('releaseLoadSlot');

type Counted = Response & { [RELEASE]?: () => void };

export function loadShedding(maxInFlight: number, metrics: MetricsService) {
  let inFlight = 0;
  return (req: Request & { id?: string }, res: Response, next: NextFunction): void => {
    if (PROBE_PATHS.has(req.path)) return next();
    if (inFlight >= maxInFlight) {
      metrics.overloadedRequests.inc();
      res.setHeader('Retry-After', '1');
      const error = new ApiError(
        ErrorCode.OVERLOADED,
        `this API process is working on ${maxInFlight} requests already; nothing was done, try again in a second`,
        [{ message: 'the API is overloaded', retryAfterSeconds: 1 }],
      );
      res.status(error.status).json(errorBody(error, req.id));
      return;
    }
    inFlight++;
    metrics.requestsInFlight.set(inFlight);
    let held = true;
    const release = (): void => {
      if (!held) return;
      held = false;
      inFlight--;
      metrics.requestsInFlight.set(inFlight);
    };
    (res as Counted)[RELEASE] = release;
    res.once('finish', release);
    res.once('close', release);
    next();
  };
}

/** Gives the request's slot back early: for a response that streams for as long as something else lasts. */
export function releaseLoadSlot(res: Response): void {
  (res as Counted)[RELEASE]?.();
}
