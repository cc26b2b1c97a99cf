import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Whether an `Authorization` header carries the metrics token (METRICS_TOKEN) as a bearer token. Compared in
 * constant time (over digests, so the length does not show either). No token configured: every scrape passes.
 */
export function metricsAuthorized(token: string | undefined, authorization: string | string[] | undefined): boolean {
  if (!token) return true;
  const given = typeof authorization === 'string' ? /^Bearer (.+)$/i.exec(authorization)?.[1] : undefined;
  if (!given) return false;
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(token));
}
