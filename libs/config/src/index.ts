import { readFileSync } from 'node:fs';
import { SHELL_MAX_LIMITS, parseLimitList } from '@task-scheduler/core';
import { z } from 'zod';

const port = z.coerce.number().int().min(0).max(65535);

/** A comma-separated list, blanks dropped, each item checked by `item`. */
const commaList = <T extends z.ZodType<unknown, string>>(item: T, fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((s) =>
      s
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean),
    )
    .pipe(z.array(item));

/**
 * Every setting of the API and the worker. Values come from a JSON file named
 * by `CONFIG_FILE` (optional) overlaid by environment variables, and are
 * validated once at start: a bad value stops the process with a message that
 * names the variable, instead of failing later at first use.
 */
const schema = z.object({
  DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// connection URL'),
  TEMPORAL_ADDRESS: z.string().min(1).default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_UI_URL: z.string().url().default('http://127.0.0.1:8233'),
  TASK_QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/)
    .default('task-scheduler'),
  HOST: z.string().default('0.0.0.0'),
  PORT: port.default(3000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  BOOTSTRAP_API_KEY: z
    .string()
    .regex(
      /^tsch_[a-z0-9]{4,32}_[A-Za-z0-9]{16,128}$/,
      'must look like tsch_<prefix>_<secret> (prefix a-z0-9, secret A-Za-z0-9, 16+ chars)',
    )
    .optional(),
  BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024),
  /** Enables `Authorization: Bearer` JWTs signed with HS256 and this secret (32+ characters). */
  JWT_HS256_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /** Enables JWTs verified against a JSON Web Key Set read from this file … */
  JWT_JWKS_FILE: z.string().optional(),
  /** … or fetched (and cached) from this URL. */
  JWT_JWKS_URL: z.string().url().optional(),
  /** Algorithms accepted with a JWKS; anything else, `none` included, is refused. */
  JWT_ALGORITHMS: commaList(
    z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']),
    'RS256,ES256',
  ).refine((a) => a.length > 0, 'name at least one algorithm'),
  JWT_ISSUER: z.string().optional(),
  JWT_AUDIENCE: z.string().optional(),
  /**
   * Requests one API process works on at once (after their bodies are read); past it a request is answered at once
   * with 503 OVERLOADED and `Retry-After: 1` instead of queueing. Health checks and metrics are never refused.
   */
  API_MAX_IN_FLIGHT: z.coerce.number().int().min(1).default(128),
  /** Requests per minute one API key may make (tenants have their own limit on top). */
  RATE_LIMIT_PER_KEY_PER_MINUTE: z.coerce.number().int().min(1).default(600),
  OUTPUT_CAP_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(16 * 1024 * 1024)
    .default(64 * 1024),
  SHUTDOWN_GRACE_SECONDS: z.coerce.number().int().min(0).max(3600).default(30),
  HEARTBEAT_SECONDS: z.coerce.number().min(0.5).max(60).default(2),
  /** How often the API checks that every schedule exists in Temporal as stored (also once at start); 0: only at start. */
  SCHEDULE_RECONCILE_SECONDS: z.coerce.number().int().min(0).max(86_400).default(60),
  /**
   * How often the API looks for runs whose record is not final although their workflow has closed (terminated from
   * outside, a finalisation lost) and ends them with the workflow's outcome, freeing their slot; 0: never.
   */
  RUN_RECONCILE_SECONDS: z.coerce.number().int().min(0).max(86_400).default(60),
  /** Only runs whose record has not changed for this long are checked (a run finishing right now is left alone). */
  RUN_RECONCILE_MIN_AGE_SECONDS: z.coerce.number().int().min(0).max(86_400).default(120),
  /** An executor silent for this long is declared lost and its attempt retried elsewhere. */
  HEARTBEAT_TIMEOUT_SECONDS: z.coerce.number().int().min(2).max(600).default(15),
  WORKER_QUEUES: commaList(z.enum(['workflows', 'shell', 'http']), 'workflows,shell,http').refine(
    (q) => q.length > 0,
    'name at least one queue',
  ),
  /**
   * 32-byte key (64 hex characters or base64) sealing task secrets. The API
   * needs it to accept secrets, executor workers to use them.
   */
  SECRETS_KEY: z
    .string()
    .refine((v) => /^[0-9a-fA-F]{64}$/.test(v) || Buffer.from(v, 'base64').length === 32, 'must be 32 bytes as 64 hex characters or base64')
    .optional(),
  /** CIDRs the HTTP executor may reach although they are loopback/private/link-local (comma-separated); none by default. */
  HTTP_ALLOW_CIDRS: commaList(z.string().regex(/^[0-9a-fA-F:.]+\/\d{1,3}$/, 'must be CIDRs like 10.0.0.0/8'), ''),
  /**
   * `sandbox` (default): every shell attempt runs in its own namespaces under
   * bubblewrap, as its own uid, with limits and no network unless it asks for
   * egress; a worker that cannot do that refuses to poll the shell queue.
   * `none`: tasks run unisolated as SHELL_RUN_AS (the worker warns at start and
   * every attempt records it).
   */
  SHELL_ISOLATION: z.enum(['sandbox', 'none']).default('sandbox'),
  /** Isolated attempts each run as a uid of this range, never shared by two attempts at once (`first-last`). */
  SHELL_UID_RANGE: z
    .string()
    .regex(/^\d+-\d+$/, 'must be <first>-<last>, e.g. 200000-299999')
    .default('200000-299999')
    .transform((s) => s.split('-').map(Number) as [number, number])
    .refine(([a, b]) => a >= 1000 && b >= a && b < 2 ** 31, 'must be 1000 <= first <= last < 2^31'),
  /** Where isolated workers keep uid leases (0700) and the sandboxes' /etc snapshot (the directory itself 0711). */
  SHELL_STATE_DIR: z.string().regex(/^\//, 'must be an absolute path').default('/run/task-scheduler'),
  /**
   * Platform defaults of shell limits (`memoryMb=1024,processes=256,cpuSeconds=3600,fileSizeMb=1024,openFiles=1024,workdirMb=1024`).
   * The API's value is what runs get (resolved into each run's input); a worker's applies only to inputs that carry none.
   */
  SHELL_DEFAULT_LIMITS: z
    .string()
    .default('')
    .transform((s, ctx) => {
      try {
        return parseLimitList(s);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
  /** Platform maxima of shell limits: no task value, tenant cap or default goes above them. */
  SHELL_MAX_LIMITS: z
    .string()
    .default('')
    .transform((s, ctx) => {
      try {
        return parseLimitList(s, SHELL_MAX_LIMITS);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
  /** Addresses egress tasks may never reach, on top of the non-public ranges and the worker's own addresses: the node's public and NAT addresses, say. */
  SHELL_EGRESS_DENY_CIDRS: commaList(z.string().regex(/^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/, 'must be IPv4 addresses or CIDRs'), ''),
  /** `required` (default): a shell worker without a writable cgroup tree refuses to start. `optional`: it starts with rlimits only. */
  SHELL_CGROUPS: z.enum(['required', 'optional']).default('required'),
  /** Resolver given to egress tasks (its queries go through the egress filter like any traffic); none by default. */
  SHELL_EGRESS_DNS: z
    .string()
    .regex(/^\d{1,3}(\.\d{1,3}){3}$/, 'must be an IPv4 address')
    .optional(),
  /**
   * With SHELL_ISOLATION=none only: the user tasks run as: `auto` (nobody when
   * the worker is root, else the worker's own user), `none` (the worker's
   * user), a user name, or `uid:gid`.
   */
  SHELL_RUN_AS: z.string().default('auto'),
  /** bubblewrap binary; found on PATH when unset. */
  BWRAP_PATH: z.string().optional(),
  WORKER_IDENTITY: z.string().optional(),
  /** Origins allowed to call the API from a browser (comma-separated); none by default. */
  CORS_ORIGINS: commaList(z.string().url(), ''),
  SHELL_PATH: z.string().default('/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'),
  /**
   * Output kept per attempt and stream in the run output store (PostgreSQL, written as the task runs); the rest
   * is counted and flagged truncated. Temporal history carries only a tail of OUTPUT_TAIL_BYTES.
   */
  OUTPUT_STORE_CAP_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(1024 * 1024 * 1024)
    .default(10 * 1024 * 1024),
  /** Tail of each stream kept in Temporal history (activity results and failure details). */
  OUTPUT_TAIL_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .max(64 * 1024)
    .default(4 * 1024),
  /** How often a running attempt's new output is written to the store. */
  OUTPUT_FLUSH_MS: z.coerce.number().int().min(20).max(10_000).default(200),
  /** `GET /metrics` on the API: `on` (default, no authentication: expose it only to your scrapers) or `off`. */
  METRICS: z.enum(['on', 'off']).default('on'),
  /**
   * When set, `/metrics` (API and worker) answers only `Authorization: Bearer <token>` (Prometheus:
   * `authorization: { credentials: … }`); without it `/metrics` needs no credential.
   */
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  /**
   * The worker's HTTP port (`/metrics`, `/health`, `/ready`); 0 picks a free port (logged at start);
   * `-1` opens none.
   */
  WORKER_HTTP_PORT: z.coerce.number().int().min(-1).max(65535).default(9464),
  WORKER_HTTP_HOST: z.string().default('0.0.0.0'),
  /** OTLP/HTTP endpoint for traces (`http://collector:4318`); no traces are exported when unset. */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional(),
  /** Service name on exported spans; defaults to task-scheduler-api / task-scheduler-worker. */
  OTEL_SERVICE_NAME: z.string().min(1).optional(),
  /** `json` (default) or `pretty` (readable lines, for `npm run dev`). */
  LOG_FORMAT: z.enum(['json', 'pretty']).default('json'),
  /** How often the API evaluates alert rules (time-based ones, re-notification, escalation) and finished runs; 0: never. */
  ALERT_EVALUATE_SECONDS: z.coerce.number().int().min(0).max(3600).default(15),
  /** How often each API process sends the alert notifications due (webhook, Slack, email); 0: never. */
  ALERT_DISPATCH_SECONDS: z.coerce.number().min(0).max(3600).default(2),
  /** The SMTP server email alert channels send through, as smtp:// or smtps:// URL (credentials in it); unset: email channels refused. */
  SMTP_URL: z
    .string()
    .regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL')
    .optional(),
  /** The From address of alert emails. */
  SMTP_FROM: z.string().min(3).default('Task Scheduler <alerts@task-scheduler.invalid>'),
  /** The API's address as users reach it, for links in alerts (run pages); default http://127.0.0.1:PORT. */
  PUBLIC_API_URL: z.string().url().optional(),
  /** Runs, their attempts, shards, output and audit events older than this many days are deleted (tenants may override); 0: keep forever. */
  RETENTION_DAYS: z.coerce.number().int().min(0).max(36_500).default(0),
  /** How often the API's retention job runs; 0: never. */
  RETENTION_SECONDS: z.coerce.number().int().min(0).max(86_400).default(3600),
  /** Rows deleted per retention batch (one short transaction each). */
  RETENTION_BATCH: z.coerce.number().int().min(1).max(10_000).default(500),
  /** Where retention writes gzipped JSON lines of what it deletes, before deleting; unset: nothing archived. */
  RETENTION_ARCHIVE_DIR: z.string().regex(/^\//, 'must be an absolute path').optional(),
});

export type AppConfig = z.infer<typeof schema>;

export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`invalid configuration:\n  ${issues.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Loads and validates configuration; throws {@link ConfigError} naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  let fromFile: Record<string, unknown> = {};
  if (env.CONFIG_FILE) {
    try {
      fromFile = JSON.parse(readFileSync(env.CONFIG_FILE, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError([`CONFIG_FILE ${env.CONFIG_FILE}: ${(err as Error).message}`]);
    }
  }
  const merged: Record<string, unknown> = { ...fromFile };
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') merged[key] = value;
  }
  const parsed = schema.safeParse(merged);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`));
  }
  return parsed.data;
}
export * from './logging';
export * from './tracing';
export * from './metrics-auth';
