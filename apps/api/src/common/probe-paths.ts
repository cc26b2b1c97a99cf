/**
 * Paths of the probes and the scraper: never refused by the load shedding (load-shedding.ts), and so documented
 * without OVERLOADED (openapi.ts). A module of its own: openapi.ts must not import the middleware's dependencies.
 */
export const PROBE_PATHS: ReadonlySet<string> = new Set(['/health', '/ready', '/metrics']);
