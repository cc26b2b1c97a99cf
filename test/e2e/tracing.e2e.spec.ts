/*
 * Traces end to end against a real OTLP receiver: Jaeger v2 (all-in-one: OTLP/HTTP in, memory storage, the
 * query API out; every port on 127.0.0.1), built and cached by scripts/go-tool-install.sh as .ci/run does.
 * The stack exports to it; each test triggers a run over the API and reads the run's trace back from
 * Jaeger's query API: one trace from the API request through the workflow start, the workflow, its
 * activity (and for a pipeline its child workflow) into the task, which sees the same trace in
 * TRACEPARENT (shell) or the `traceparent` header (HTTP).
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiTracing } from '../../apps/api/src/infra/tracing';
import { createWorkerTracing } from '../../apps/worker/src/tracing';
import { eventually } from '../support/eventually';
import { pipelineClient } from '../support/pipelines';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';
import { freePort } from '../support/ports';

const ROOT = join(__dirname, '..', '..');
const JAEGER = ['jaeger', 'github.com/jaegertracing/jaeger/cmd/jaeger', 'v1.75.0'];
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references: { refType: string; traceID: string; spanID: string }[];
  processID: string;
  tags: { key: string; value: unknown }[];
}
interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string }>;
}

/** The cached build (or a fresh one: minutes), exactly as .ci/run makes it; the path is the last line. */
function resolveJaeger(): string {
  const out = execFileSync('bash', [join(ROOT, 'scripts/go-tool-install.sh'), ...JAEGER], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 20 * 60_000,
  });
  return out.trim().split('\n').pop() as string;
}

function jaegerConfig(ports: { otlp: number; query: number; queryGrpc: number }): string {
  // Only what the test needs: no gRPC/Jaeger/Zipkin receivers, no self-metrics server (:8888), no health port.
  return `
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:${ports.query}
    grpc:
      endpoint: 127.0.0.1:${ports.queryGrpc}
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${ports.otlp}
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`;
}

let jaeger: ChildProcess | undefined;
let jaegerOutput = '';
let queryUrl = '';
let otlpPort = 0;
let workDir = '';
let stack: TestStack;
let target: Server;
let targetOrigin = '';
const received: { path: string; headers: IncomingHttpHeaders }[] = [];

beforeAll(async () => {
  const bin = resolveJaeger();
  const ports = { otlp: await freePort(), query: await freePort(), queryGrpc: await freePort() };
  workDir = mkdtempSync(join(tmpdir(), 'tracing-e2e-'));
  const configPath = join(workDir, 'jaeger.yaml');
  writeFileSync(configPath, jaegerConfig(ports));
  jaeger = spawn(bin, [`--config=file:${configPath}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  jaeger.stdout?.on('data', (c) => (jaegerOutput += c));
  jaeger.stderr?.on('data', (c) => (jaegerOutput += c));
  queryUrl = `http://127.0.0.1:${ports.query}`;
  otlpPort = ports.otlp;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const up = await fetch(`${queryUrl}/api/services`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    if (jaeger.exitCode !== null || Date.now() > deadline)
      throw new Error(`Jaeger did not come up on ${queryUrl} (exit ${jaeger.exitCode}):\n${jaegerOutput.slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }

  target = createServer((req, res) => {
    received.push({ path: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
  targetOrigin = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;

  // Batches leave every 200 ms instead of 5 s, so the trace is complete soon after the run (a standard OTel variable).
  process.env.OTEL_BSP_SCHEDULE_DELAY = '200';
  stack = await startStack('tracing', {
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${ports.otlp}`, HTTP_ALLOW_CIDRS: '127.0.0.1/32' },
  });
}, 25 * 60_000);

afterAll(async () => {
  await stack?.stop();
  delete process.env.OTEL_BSP_SCHEDULE_DELAY;
  target?.closeAllConnections();
  target?.close();
  if (jaeger && jaeger.exitCode === null) {
    const exited = new Promise((r) => jaeger?.once('exit', r));
    jaeger.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (jaeger.exitCode === null) jaeger.kill('SIGKILL');
  }
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

async function createTask(body: Record<string, unknown>): Promise<string> {
  const res = await stack.request('POST', '/v1/tasks', {
    body: {
      name: `traced-${Date.now()}-${Math.random().toString(16).slice(2, 8)}`,
      timeoutSeconds: 60,
      retry: { maximumAttempts: 1 },
      ...body,
    },
  });
  if (res.status !== 201) throw new Error(`POST /v1/tasks: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id;
}

/** Reads the trace until it holds every named span (spans of one trace arrive in several batches). */
async function traceWith(traceId: string, names: string[]): Promise<JaegerTrace> {
  let last: JaegerTrace | null = null;
  try {
    await eventually(
      async () => {
        const res = await fetch(`${queryUrl}/api/traces/${traceId}`);
        last = res.ok ? ((await res.json()) as { data: JaegerTrace[] }).data[0] : null;
        return last;
      },
      (t) => t !== null && names.every((n) => t.spans.some((s) => s.operationName === n)),
      30_000,
      300,
    );
  } catch {
    const have = (last as JaegerTrace | null)?.spans.map((s) => s.operationName) ?? [];
    throw new Error(`trace ${traceId} lacks some of ${JSON.stringify(names)}; it has ${JSON.stringify(have)}`);
  }
  return last as unknown as JaegerTrace;
}

const parentOf = (s: JaegerSpan): string | undefined => s.references.find((r) => r.refType === 'CHILD_OF')?.spanID;
const tag = (s: JaegerSpan, key: string): unknown => s.tags.find((t) => t.key === key)?.value;
const service = (t: JaegerTrace, s: JaegerSpan): string => t.processes[s.processID]?.serviceName;

/**
 * The spans named `names`, each the child of the one before, the first a root: the path from the API request
 * down to the task's activity. Fails naming the first link that is missing.
 */
function pathOf(trace: JaegerTrace, names: string[]): JaegerSpan[] {
  const path: JaegerSpan[] = [];
  for (const name of names) {
    const parent = path[path.length - 1];
    const span = trace.spans.find((s) => s.operationName === name && parentOf(s) === parent?.spanID);
    if (!span) {
      const tree = trace.spans.map((s) => `${s.operationName} ${s.spanID} <- ${parentOf(s) ?? 'root'}`).join('\n');
      throw new Error(`no span ${name} under ${parent ? `${parent.operationName} ${parent.spanID}` : 'the root'} in:\n${tree}`);
    }
    path.push(span);
  }
  for (const s of path) expect(s.traceID).toBe(trace.traceID);
  return path;
}

test('a shell run: API request → workflow start → workflow → activity, and the task gets TRACEPARENT of its RunActivity span', async () => {
  const taskId = await createTask({ executor: 'shell', shell: { script: 'echo "$TRACEPARENT"' } });
  const triggered = await stack.request('POST', `/v1/tasks/${taskId}/runs`);
  expect(triggered.status).toBe(202);
  const run = await stack.waitForRun(triggered.body.id);
  expect(run.status).toBe('succeeded');
  const printed = String(run.stdout).trim();
  expect(printed).toMatch(TRACEPARENT);
  const [, traceId, spanId] = TRACEPARENT.exec(printed) as RegExpExecArray;

  const names = [
    'POST /v1/tasks/:id/runs',
    'StartWorkflow:taskRunWorkflow',
    'RunWorkflow:taskRunWorkflow',
    'StartActivity:runShellCommand',
    'RunActivity:runShellCommand',
  ];
  const trace = await traceWith(traceId, names);
  const [request, start, workflow, , activity] = pathOf(trace, names);
  expect(activity.spanID).toBe(spanId);

  expect(service(trace, request)).toBe('task-scheduler-api');
  expect(service(trace, start)).toBe('task-scheduler-api');
  expect(service(trace, workflow)).toBe('task-scheduler-worker');
  expect(service(trace, activity)).toBe('task-scheduler-worker');
  expect(tag(request, 'http.method')).toBe('POST');
  expect(tag(request, 'http.route')).toBe('/v1/tasks/:id/runs');
  expect(tag(request, 'http.status_code')).toBe(202);
  expect(tag(request, 'http.request_id')).toBe(triggered.headers.get('x-request-id'));
  expect(tag(request, 'span.kind')).toBe('server');
  for (const s of [start, workflow, activity]) expect(tag(s, 'temporalWorkflowId')).toBe(run.workflowId);
  // Workflow spans carry a few fields of the workflow's info, not all of it (memo, search attributes).
  expect(tag(workflow, 'temporalWorkflowType')).toBe('taskRunWorkflow');
  expect(workflow.tags.map((t) => t.key)).not.toContain('memo');
});

test('an HTTP run sends `traceparent` of its RunActivity span, in the trace of the API request', async () => {
  const taskId = await createTask({ executor: 'http', http: { method: 'GET', url: `${targetOrigin}/traced` } });
  const triggered = await stack.request('POST', `/v1/tasks/${taskId}/runs`);
  expect(triggered.status).toBe(202);
  const run = await stack.waitForRun(triggered.body.id);
  expect(run.status).toBe('succeeded');
  const got = received.filter((r) => r.path === '/traced');
  expect(got).toHaveLength(1);
  const header = String(got[0].headers.traceparent);
  expect(header).toMatch(TRACEPARENT);
  const [, traceId, spanId] = TRACEPARENT.exec(header) as RegExpExecArray;

  const names = [
    'POST /v1/tasks/:id/runs',
    'StartWorkflow:taskRunWorkflow',
    'RunWorkflow:taskRunWorkflow',
    'StartActivity:runHttpRequest',
    'RunActivity:runHttpRequest',
  ];
  const path = pathOf(await traceWith(traceId, names), names);
  expect(path[4].spanID).toBe(spanId);
});

test('a pipeline run: the step runs as a child workflow in the same trace', async () => {
  const p = pipelineClient(stack, stack.apiKey);
  const task = await p.createTask({ name: 'traced-step', shell: { script: 'echo "$TRACEPARENT"' } });
  const pipeline = await p.createPipeline({ name: 'traced', steps: [{ key: 'only', task }] });
  const started = await p.startPipelineRun(pipeline.id);
  const done = await p.waitForPipelineRun(started.id);
  expect(done.status).toBe('succeeded');
  const step = done.steps.find((s: any) => s.key === 'only');
  const stepRun = await stack.waitForRun(step.runId);
  const [, traceId, spanId] = TRACEPARENT.exec(String(stepRun.stdout).trim()) ?? [];
  expect(traceId).toBeDefined();

  const names = [
    'POST /v1/pipelines/:id/runs',
    'StartWorkflow:pipelineRunWorkflow',
    'RunWorkflow:pipelineRunWorkflow',
    'StartChildWorkflow:taskRunWorkflow',
    'RunWorkflow:taskRunWorkflow',
    'StartActivity:runShellCommand',
    'RunActivity:runShellCommand',
  ];
  const path = pathOf(await traceWith(traceId, names), names);
  expect(path[6].spanID).toBe(spanId);
});

test('a worker process (production bundle) exports its spans, the last ones on SIGTERM', async () => {
  // Its own stack without in-process workers, so the worker process alone serves the run.
  const proc = await startStack('tracing-proc', {
    workers: false,
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${otlpPort}` },
  });
  const worker = proc.spawnApp('worker', {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${otlpPort}`,
    OTEL_SERVICE_NAME: 'tracing-e2e-worker-process',
    // No batch leaves before the drain: what reaches Jaeger was flushed by the shutdown in main.ts.
    OTEL_BSP_SCHEDULE_DELAY: '600000',
    WORKER_HTTP_PORT: '-1',
  });
  try {
    const res = await proc.request('POST', '/v1/tasks', {
      body: {
        name: `traced-proc-${Date.now()}`,
        executor: 'shell',
        shell: { script: 'echo "$TRACEPARENT"' },
        retry: { maximumAttempts: 1 },
      },
    });
    expect(res.status).toBe(201);
    const triggered = await proc.request('POST', `/v1/tasks/${res.body.id}/runs`);
    expect(triggered.status).toBe(202);
    const run = await proc.waitForRun(triggered.body.id);
    expect(run.status).toBe('succeeded');
    const [, traceId, spanId] = TRACEPARENT.exec(String(run.stdout).trim()) ?? [];
    expect(traceId).toBeDefined();
    expect(await worker.stop()).toBe(0);

    const names = [
      'POST /v1/tasks/:id/runs',
      'StartWorkflow:taskRunWorkflow',
      'RunWorkflow:taskRunWorkflow',
      'StartActivity:runShellCommand',
      'RunActivity:runShellCommand',
    ];
    const trace = await traceWith(traceId, names);
    const path = pathOf(trace, names);
    expect(path[4].spanID).toBe(spanId);
    expect(service(trace, path[2])).toBe('tracing-e2e-worker-process');
    expect(service(trace, path[4])).toBe('tracing-e2e-worker-process');
  } finally {
    await worker.stop();
    await proc.stop();
  }
});

test('without OTEL_EXPORTER_OTLP_ENDPOINT nothing is traced or exported', () => {
  const api = ApiTracing.fromConfig({});
  expect(api.enabled).toBe(false);
  expect(api.tracer).toBeNull();
  expect(api.workflowClientInterceptors()).toEqual([]);
  const worker = createWorkerTracing({});
  expect(worker.enabled).toBe(false);
  expect(worker.activityInterceptors).toEqual([]);
  // Only the no-op sink the bundled workflow interceptors call.
  expect(Object.keys(worker.sinks)).toEqual(['exporter']);
});
