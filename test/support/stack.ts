/* A whole product stack inside the test process: the real NestJS API on a
 * random port and real Temporal workers, against the dev server and database
 * from global setup. Each suite gets its own task-queue prefix, so suites
 * running in parallel never pick up each other's work. */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { createApp } from '@task-scheduler/api';
import { loadConfig } from '@task-scheduler/config';
import { FINAL_RUN_STATUSES } from '@task-scheduler/contracts';
import type { AppConfig } from '@task-scheduler/config';
import { apiKeyFromString, generateApiKey } from '@task-scheduler/core';
import { ApiKeyEntity, TenantEntity, createDataSource } from '@task-scheduler/db';
import { createWorkers } from '@task-scheduler/worker';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import type { Worker } from '@temporalio/worker';
import type { DataSource } from 'typeorm';

export interface TestStack {
  config: AppConfig;
  baseUrl: string;
  /** Admin key of the `default` tenant. */
  apiKey: string;
  db: DataSource;
  temporal: NativeConnection;
  /** The in-process API, for tests that drive one of its services directly (e.g. the schedule reconciler). */
  app: INestApplication;
  request(
    method: string,
    path: string,
    opts?: { body?: unknown; rawBody?: string; apiKey?: string | null; headers?: Record<string, string> },
  ): Promise<{ status: number; body: any; headers: Headers }>;
  /** A second tenant with its own admin key, for isolation checks. */
  createTenant(
    slug: string,
    limits?: Partial<Pick<TenantEntity, 'maxTasks' | 'rateLimitPerMinute' | 'maxConcurrentRuns'>>,
  ): Promise<{ tenantId: string; apiKey: string }>;
  waitForRun(runId: string, until?: (run: any) => boolean, timeoutMs?: number, apiKey?: string): Promise<any>;
  /**
   * Runs the built `apps/<app>/dist/main.js` as its own process against this stack's database,
   * Temporal and task queues (plus `env`), for tests of real process behaviour.
   */
  spawnApp(app: 'api' | 'worker', env?: Record<string, string>): AppProcess;
  stop(): Promise<void>;
}

export interface AppProcess {
  child: ChildProcess;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<number | null>;
}

let runtimeInstalled = false;

export interface StackOptions {
  /** Config values to override. */
  env?: Record<string, string>;
  /** Start in-process workers (default true); false when a test runs worker processes itself. */
  workers?: boolean;
  /** Address the API listens on (default 127.0.0.1); a test's own veth address to be reached from a network namespace. */
  host?: string;
}

export async function startStack(name: string, opts: StackOptions = {}): Promise<TestStack> {
  const overrides = opts.env ?? {};
  if (!runtimeInstalled) {
    runtimeInstalled = true;
    try {
      Runtime.install({ logger: new DefaultLogger('WARN') });
    } catch {
      // already installed by an earlier suite in this Jest worker
    }
  }
  const apiKey = generateApiKey().key;
  const config = loadConfig({
    DATABASE_URL: required('TEST_DATABASE_URL'),
    TEMPORAL_ADDRESS: required('TEST_TEMPORAL_ADDRESS'),
    TASK_QUEUE_PREFIX: `test-${name}-${randomBytes(3).toString('hex')}`,
    BOOTSTRAP_API_KEY: apiKey,
    LOG_LEVEL: 'warn',
    PORT: '0',
    HEARTBEAT_SECONDS: '1',
    SECRETS_KEY: randomBytes(32).toString('hex'),
    SHUTDOWN_GRACE_SECONDS: '5',
    // Suites share the default tenant and poll; limits are tested on their own tenants.
    RATE_LIMIT_PER_KEY_PER_MINUTE: '1000000',
    // Suites share one database: a run reconciler of one suite's API must not end the runs another suite made
    // without a workflow on purpose. Its own test runs a pass by hand.
    RUN_RECONCILE_SECONDS: '0',
    // Likewise: a suite's alert evaluator or retention job must not act on another suite's rows; tests run passes by hand.
    ALERT_EVALUATE_SECONDS: '0',
    ALERT_DISPATCH_SECONDS: '0',
    RETENTION_SECONDS: '0',
    ...overrides,
  });
  const app: INestApplication = await createApp(config, { logger: false });
  await app.listen(0, opts.host ?? '127.0.0.1');
  const baseUrl = (await app.getUrl()).replace('[::1]', '127.0.0.1');

  const db = await createDataSource({ url: config.DATABASE_URL, applicationName: `test-${name}`, poolSize: 4 }).initialize();
  await db.query(`UPDATE tenants SET rate_limit_per_minute = 1000000, max_tasks = 1000000 WHERE slug = 'default'`);
  await expectBootstrapKey(db, apiKey);
  const temporal = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const workers: Worker[] =
    opts.workers === false
      ? []
      : await createWorkers({
          config,
          dataSource: db,
          connection: temporal,
          workflows: { bundlePath: required('TEST_WORKFLOW_BUNDLE') },
        });
  const running = workers.map((w) => w.run());

  const request: TestStack['request'] = async (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    const key = opts.apiKey === undefined ? apiKey : opts.apiKey;
    if (key !== null) headers['x-api-key'] = key;
    let body: string | undefined;
    if (opts.rawBody !== undefined) body = opts.rawBody;
    else if (opts.body !== undefined) body = JSON.stringify(opts.body);
    if (body !== undefined) headers['content-type'] ??= 'application/json';
    const res = await fetch(`${baseUrl}${path}`, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };

  return {
    app,
    config,
    baseUrl,
    apiKey,
    db,
    temporal,
    request,
    async createTenant(slug, limits = {}) {
      const tenant = await db
        .getRepository(TenantEntity)
        .save({ slug, name: slug, status: 'active', maxConcurrentRuns: 10, maxTasks: 100, rateLimitPerMinute: 1_000_000, ...limits });
      const key = apiKeyFromString(generateApiKey().key);
      await db.getRepository(ApiKeyEntity).insert({
        tenantId: tenant.id,
        name: 'test admin',
        prefix: key.prefix,
        secretHash: key.secretHash,
        role: 'admin',
        permissions: [],
        platformAdmin: false,
      });
      return { tenantId: tenant.id, apiKey: key.key };
    },
    async waitForRun(runId, until = (r) => FINAL_RUN_STATUSES.includes(r.status), timeoutMs = 60_000, key = apiKey) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const res = await request('GET', `/v1/runs/${runId}`, { apiKey: key });
        if (res.status !== 200) throw new Error(`GET run ${runId}: ${res.status} ${JSON.stringify(res.body)}`);
        if (until(res.body)) return res.body;
        if (Date.now() > deadline) throw new Error(`run ${runId} still ${res.body.status} after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    spawnApp(app, env = {}) {
      let out = '';
      const child = spawn(process.execPath, [join(__dirname, '../../apps', app, 'dist/main.js')], {
        env: {
          PATH: process.env.PATH,
          DATABASE_URL: config.DATABASE_URL,
          TEMPORAL_ADDRESS: config.TEMPORAL_ADDRESS,
          TASK_QUEUE_PREFIX: config.TASK_QUEUE_PREFIX,
          ...(config.SECRETS_KEY ? { SECRETS_KEY: config.SECRETS_KEY } : {}),
          LOG_LEVEL: 'warn',
          // Suites run worker processes side by side: each gets its own free port, not the fixed default.
          WORKER_HTTP_PORT: '0',
          RUN_RECONCILE_SECONDS: '0',
          ALERT_EVALUATE_SECONDS: '0',
          ALERT_DISPATCH_SECONDS: '0',
          RETENTION_SECONDS: '0',
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      // Also to a file global teardown reads: no process of a whole test run may log a key or a task token.
      const logDir = process.env.TEST_APP_LOG_DIR;
      const file = logDir ? createWriteStream(join(logDir, `${app}-${name}-${child.pid}.log`), { flags: 'a' }) : null;
      child.stdout?.on('data', (c) => ((out += c), file?.write(c)));
      child.stderr?.on('data', (c) => ((out += c), file?.write(c)));
      child.once('exit', () => file?.end());
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      return {
        child,
        exited,
        output: () => out,
        stop: () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          return exited;
        },
      };
    },
    async stop() {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await Promise.allSettled(running);
      await app.close();
      await temporal.close();
      await db.destroy();
    },
  };
}

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run tests through jest with the integration project's global setup`);
  return v;
}

/**
 * The API adds `BOOTSTRAP_API_KEY` to the `default` tenant on start. When a suite has left the shared schema
 * without an active `default` tenant, every request of this stack would be a bare 401: say why, here, instead.
 */
async function expectBootstrapKey(db: DataSource, apiKey: string): Promise<void> {
  const { prefix } = apiKeyFromString(apiKey);
  const [key] = await db.query(
    `SELECT t.slug, t.status, k.revoked_at FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.prefix = $1`,
    [prefix],
  );
  if (key?.slug === 'default' && key.status === 'active' && !key.revoked_at) return;
  const tenants = await db.query(`SELECT slug, status FROM tenants ORDER BY created_at LIMIT 10`);
  await db.destroy();
  throw new Error(
    `test stack: the bootstrap key was not added to an active default tenant (key: ${JSON.stringify(key ?? null)}; ` +
      `first tenants: ${JSON.stringify(tenants)})`,
  );
}
