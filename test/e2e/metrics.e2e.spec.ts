/* Prometheus metrics end to end: the in-process API and a real worker process are scraped by a real
 * Prometheus server (Debian's `prometheus`), a few shell tasks run, and Prometheus's HTTP API must report
 * exactly the counts they made. Both expositions pass `promtool check metrics`; the worker's probes answer
 * as Kubernetes expects, also while it drains. */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack } from '../support/stack';
import type { AppProcess, TestStack } from '../support/stack';
import { freePort } from '../support/ports';
import { eventually } from '../support/eventually';

let stack: TestStack;
let worker: AppProcess;
let workerUrl: string;
let prometheus: ChildProcess | undefined;
let prometheusUrl: string;
let prometheusLog = '';
let dir: string;

/** Asks `probe` every 250 ms until it returns a value, for at most `timeoutMs`; then fails naming `what`. */
async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function get(url: string): Promise<{ status: number; text: string; contentType: string | null }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, text: await res.text(), contentType: res.headers.get('content-type') };
}

/** The value of an instant PromQL query that yields one sample (undefined while it yields none). */
async function query(promql: string): Promise<number | undefined> {
  const res = await get(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = JSON.parse(res.text);
  if (body.status !== 'success') throw new Error(`${promql}: ${res.text}`);
  const result = body.data.result as { value: [number, string] }[];
  if (result.length > 1) throw new Error(`${promql}: ${result.length} series`);
  return result.length ? Number(result[0].value[1]) : undefined;
}

/** Waits until Prometheus has scraped the value `want` for `promql` (scrapes are 1 s apart). */
async function expectEventually(promql: string, want: number): Promise<void> {
  let seen: number | undefined;
  await until(
    `${promql} == ${want} (last seen ${seen})`,
    async () => {
      seen = await query(promql);
      return seen === want ? true : undefined;
    },
    30_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last seen ${seen}; prometheus log tail: ${prometheusLog.slice(-2000)}`);
  });
}

async function runTask(name: string, script: string): Promise<string> {
  const task = await stack.request('POST', '/v1/tasks', {
    body: { name, executor: 'shell', shell: { script }, retry: { maximumAttempts: 1 } },
  });
  expect(task.status).toBe(201);
  const run = await stack.request('POST', `/v1/tasks/${task.body.id}/runs`);
  expect(run.status).toBe(202);
  return run.body.id;
}

function promtoolCheck(exposition: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

beforeAll(async () => {
  stack = await startStack('metrics', { workers: false });
  const workerPort = await freePort();
  workerUrl = `http://127.0.0.1:${workerPort}`;
  worker = stack.spawnApp('worker', {
    WORKER_HTTP_HOST: '127.0.0.1',
    WORKER_HTTP_PORT: String(workerPort),
    SHUTDOWN_GRACE_SECONDS: '20',
    LOG_LEVEL: 'info',
  });
  await until(
    'the worker HTTP port answers /health',
    async () => ((await get(`${workerUrl}/health`)).status === 200 ? true : undefined),
    60_000,
  );

  dir = mkdtempSync(join(tmpdir(), 'metrics-e2e-'));
  const promPort = await freePort();
  prometheusUrl = `http://127.0.0.1:${promPort}`;
  const api = new URL(stack.baseUrl);
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      'scrape_configs:',
      '  - job_name: api',
      `    static_configs: [{ targets: ['127.0.0.1:${api.port}'] }]`,
      '  - job_name: worker',
      `    static_configs: [{ targets: ['127.0.0.1:${workerPort}'] }]`,
      '',
    ].join('\n'),
  );
  prometheus = spawn(
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  prometheus.stdout?.on('data', (c) => (prometheusLog += c));
  prometheus.stderr?.on('data', (c) => (prometheusLog += c));
  await until('Prometheus is ready', async () => ((await get(`${prometheusUrl}/-/ready`)).status === 200 ? true : undefined), 30_000).catch(
    (err: Error) => {
      throw new Error(`${err.message}; prometheus log: ${prometheusLog.slice(-2000)}`);
    },
  );
}, 120_000);

afterAll(async () => {
  if (prometheus && prometheus.exitCode === null) {
    const exited = new Promise((r) => prometheus?.once('exit', r));
    prometheus.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 5_000)))]);
    clearTimeout(timer);
    if (prometheus.exitCode === null) prometheus.kill('SIGKILL');
  }
  if (worker && worker.child.exitCode === null) {
    worker.child.kill('SIGKILL');
    await worker.exited;
  }
  await stack?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the worker is ready once it polls, and both targets are up in Prometheus', async () => {
  await until('the worker is ready', async () => ((await get(`${workerUrl}/ready`)).status === 200 ? true : undefined), 60_000);
  expect(JSON.parse((await get(`${workerUrl}/ready`)).text)).toEqual({ status: 'ready' });
  expect((await get(`${workerUrl}/nope`)).status).toBe(404);
  await expectEventually('up{job="api"}', 1);
  await expectEventually('up{job="worker"}', 1);
  expect(worker.output()).toMatch(/worker HTTP port open/);
});

test('runs, attempts, output, requests and auth failures are counted exactly', async () => {
  const runs = [
    await runTask('metrics-ok-1', 'echo hello'),
    await runTask('metrics-ok-2', 'echo hello'),
    await runTask('metrics-fail', 'echo oops >&2; exit 3'),
  ];
  const ended = await Promise.all(runs.map((id) => stack.waitForRun(id, undefined, 60_000)));
  expect(ended.map((r) => r.status)).toEqual(['succeeded', 'succeeded', 'failed']);
  expect((await stack.request('GET', '/v1/tasks', { apiKey: null })).status).toBe(401);
  expect((await stack.request('GET', '/v1/no-such-route')).status).toBe(404);

  // The worker process ran every attempt of this suite; the API is this suite's own instance.
  await expectEventually('task_scheduler_attempts_total{job="worker",executor="shell",outcome="succeeded"}', 2);
  await expectEventually('task_scheduler_attempts_total{job="worker",executor="shell",outcome="failed"}', 1);
  await expectEventually('task_scheduler_attempts_total{job="worker",executor="shell",outcome="timed_out"}', 0);
  await expectEventually('task_scheduler_attempt_duration_seconds_count{job="worker",executor="shell"}', 3);
  await expectEventually('task_scheduler_attempt_queue_seconds_count{job="worker",executor="shell"}', 3);
  // Every shell attempt here ran in a sandbox (the default): each observed its setup time once.
  await expectEventually('task_scheduler_isolation_setup_seconds_count{job="worker"}', 3);
  await expectEventually('task_scheduler_output_bytes_total{job="worker",executor="shell",stream="stdout"}', 'hello\n'.length * 2);
  await expectEventually('task_scheduler_output_bytes_total{job="worker",executor="shell",stream="stderr"}', 'oops\n'.length);
  await expectEventually('task_scheduler_runs_triggered_total{job="api",trigger="manual"}', 3);
  await expectEventually('task_scheduler_runs_finished_total{job="worker",status="succeeded"}', 2);
  await expectEventually('task_scheduler_runs_finished_total{job="worker",status="failed"}', 1);
  await expectEventually('task_scheduler_auth_failures_total{job="api",reason="no_credential"}', 1);
  await expectEventually(
    'http_server_request_duration_seconds_count{job="api",method="POST",route="/v1/tasks/:id/runs",status_code="202"}',
    3,
  );
  await expectEventually('http_server_request_duration_seconds_count{job="api",method="GET",route="unmatched",status_code="404"}', 1);
  await expectEventually('http_server_request_duration_seconds_count{job="api",method="GET",route="/v1/tasks",status_code="401"}', 1);
  // Run ids never become label values.
  expect(await query(`count({__name__=~".+", run_id!=""})`)).toBeUndefined();
  // The deployment-wide gauges (the database is shared with other suites: only their presence is exact).
  expect(await query('task_scheduler_runs_waiting_for_slot{job="worker"}')).toBeGreaterThanOrEqual(0);
  expect(await query('task_scheduler_runs_admitted{job="worker",status="running"}')).toBeGreaterThanOrEqual(0);
  // The Temporal SDK's own metrics come through the worker's port.
  await expectEventually('task_scheduler_worker_sdk_metrics_up{job="worker"}', 1);
  expect(await query('sum(temporal_worker_task_slots_available{job="worker"}) > 0')).toBeGreaterThan(0);
});

/**
 * prom-client's default process metrics include three gauges named `*_total` (`nodejs_active_handles_total`, …),
 * which promtool's lint flags; they are the library's names, known to every Node.js dashboard, so they stay and
 * are the only lint problems accepted. Everything else must pass as is.
 */
const ACCEPTED_LINT = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];
const metricNameOf = (line: string): string => (line.startsWith('# ') ? line.split(' ')[2] : line.split(/[{ ]/)[0]);

test('both expositions pass promtool check metrics', async () => {
  const api = await get(`${stack.baseUrl}/metrics`);
  const fromWorker = await get(`${workerUrl}/metrics`);
  for (const [name, res] of [
    ['api', api],
    ['worker', fromWorker],
  ] as const) {
    expect(res.status).toBe(200);
    expect(res.contentType).toMatch(/^text\/plain;.*version=0\.0\.4/);
    const full = promtoolCheck(res.text);
    const problems = full.output.split('\n').filter(Boolean);
    expect({ name, problems: problems.filter((p) => !ACCEPTED_LINT.includes(p.split(' ')[0])) }).toEqual({ name, problems: [] });
    const rest = res.text
      .split('\n')
      .filter((l) => !ACCEPTED_LINT.includes(metricNameOf(l)))
      .join('\n');
    expect({ name, ...promtoolCheck(rest) }).toEqual({ name, status: 0, output: '' });
  }
  // Nothing is exposed twice (prom-client's and the SDK's parts are concatenated).
  const types = fromWorker.text.split('\n').filter((l) => l.startsWith('# TYPE '));
  expect(new Set(types.map((l) => l.split(' ')[2])).size).toBe(types.length);
  expect(fromWorker.text).toMatch(/^temporal_/m);
});

test('/metrics needs no credential and is not in the OpenAPI document', async () => {
  const res = await stack.request('GET', '/metrics', { apiKey: null });
  expect(res.status).toBe(200);
  const doc = await stack.request('GET', '/docs-json', { apiKey: null });
  expect(Object.keys(doc.body.paths)).not.toContain('/metrics');
});

test('the worker is not ready while it drains, and exits 0', async () => {
  const runId = await runTask('metrics-drain', 'sleep 3; echo done');
  await stack.waitForRun(runId, (r) => r.status === 'running', 30_000);
  worker.child.kill('SIGTERM');
  const drained = await until(
    'the worker answers 503 on /ready while draining',
    async () => {
      const res = await get(`${workerUrl}/ready`);
      return res.status === 503 ? res : undefined;
    },
    10_000,
  );
  expect(JSON.parse(drained.text)).toMatchObject({ status: 'not_ready' });
  expect((await get(`${workerUrl}/health`)).status).toBe(200);
  expect(await worker.exited).toBe(0);
});

test('with METRICS=off the API serves no /metrics', async () => {
  const off = await startStack('metrics-off', { workers: false, env: { METRICS: 'off' } });
  try {
    expect((await off.request('GET', '/metrics', { apiKey: null })).status).toBe(404);
    expect((await off.request('GET', '/health', { apiKey: null })).status).toBe(200);
  } finally {
    await off.stop();
  }
});

test('with METRICS_TOKEN, /metrics of the API and of a worker answers only that bearer token', async () => {
  const token = `metrics-${'x'.repeat(12)}-${process.pid}`;
  const guarded = await startStack('metrics-token', { workers: false, env: { METRICS_TOKEN: token } });
  const port = await freePort();
  const w = guarded.spawnApp('worker', { WORKER_HTTP_PORT: String(port), WORKER_HTTP_HOST: '127.0.0.1', METRICS_TOKEN: token });
  try {
    for (const base of [guarded.baseUrl, `http://127.0.0.1:${port}`]) {
      const get = (authorization?: string) =>
        fetch(`${base}/metrics`, { headers: authorization ? { authorization } : {} }).then(
          (r) => r.status,
          () => 0,
        );
      await eventually(
        () => get(`Bearer ${token}`),
        (s) => s === 200,
        60_000,
        250,
      );
      expect(await get()).toBe(401);
      expect(await get(`Bearer ${token}x`)).toBe(401);
      expect(await get(`Basic ${token}`)).toBe(401);
    }
    // The probes stay open: a kubelet sends no token.
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
  } finally {
    await w.stop();
    await guarded.stop();
  }
});
