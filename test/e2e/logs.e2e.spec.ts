/* The logs of real API and worker processes at debug, over runs that succeed, fail and retry, with task
 * secrets: one JSON schema, an attempt's start and end with its ids, errors with message and type, short
 * request lines, no route table at info, and no secret, key or task token anywhere. */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startStack } from '../support/stack';
import type { AppProcess, TestStack } from '../support/stack';
import { eventually } from '../support/eventually';
import { freePort } from '../support/ports';

let stack: TestStack;
let api: AppProcess;
let worker: AppProcess;
let apiUrl: string;
let receiver: ReturnType<typeof createServer>;
let receiverUrl: string;
const shellSecret = `shellsecret-${randomBytes(8).toString('hex')}`;
const headerSecret = `headersecret-${randomBytes(8).toString('hex')}`;

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${apiUrl}${path}`, {
    method,
    headers: { 'x-api-key': stack.apiKey, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

beforeAll(async () => {
  receiver = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ ok: true }));
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  stack = await startStack('logs', { workers: false, env: { HTTP_ALLOW_CIDRS: '127.0.0.0/8' } });
  const port = await freePort();
  apiUrl = `http://127.0.0.1:${port}`;
  const common = { LOG_LEVEL: 'debug', HTTP_ALLOW_CIDRS: '127.0.0.0/8', BOOTSTRAP_API_KEY: stack.apiKey };
  api = stack.spawnApp('api', { ...common, PORT: String(port), HOST: '127.0.0.1' });
  worker = stack.spawnApp('worker', { ...common, HEARTBEAT_SECONDS: '1' });
  await eventually(
    () =>
      fetch(`${apiUrl}/health`).then(
        (r) => r.status,
        () => 0,
      ),
    (s) => s === 200,
    60_000,
    250,
  );
});

afterAll(async () => {
  await api?.stop();
  await worker?.stop();
  await stack?.stop();
  await new Promise((r) => receiver?.close(r));
});

async function runTask(body: Record<string, unknown>): Promise<any> {
  const created = await call('POST', '/v1/tasks', body);
  expect(created.status).toBe(201);
  const queued = await call('POST', `/v1/tasks/${created.body.id}/runs`);
  expect(queued.status).toBe(202);
  return eventually(
    async () => (await call('GET', `/v1/runs/${queued.body.id}`)).body,
    (r) => ['succeeded', 'failed', 'cancelled', 'timed_out'].includes(r?.status),
    90_000,
    300,
  );
}

test('one schema, attempt lines with ids, errors with message and type, and no secrets, keys or task tokens', async () => {
  const ok = await runTask({
    name: 'logs-shell-ok',
    executor: 'shell',
    shell: { script: 'echo "using $TOKEN"', secretEnv: { TOKEN: shellSecret } },
    retry: { maximumAttempts: 1 },
  });
  expect(ok.status).toBe('succeeded');
  const failing = await runTask({
    name: 'logs-shell-fails',
    executor: 'shell',
    shell: { script: 'echo "bad $TOKEN" >&2; exit 3', secretEnv: { TOKEN: shellSecret } },
    retry: { maximumAttempts: 2, initialIntervalSeconds: 0.1 },
  });
  expect(failing.status).toBe('failed');
  const http = await runTask({
    name: 'logs-http',
    executor: 'http',
    http: { method: 'POST', url: receiverUrl, secretHeaders: { authorization: `Bearer ${headerSecret}` }, body: { a: 1 } },
    retry: { maximumAttempts: 1 },
  });
  expect(http.status).toBe('succeeded');
  expect((await call('GET', '/v1/runs?limit=5')).status).toBe(200);
  expect((await call('GET', '/v1/runs/not-a-run')).status).toBe(404);

  await worker.stop();
  await api.stop();
  const logs = { api: api.output(), worker: worker.output() };

  for (const [service, text] of Object.entries(logs)) {
    const records = text
      .split('\n')
      .filter((l) => l.trim() && !/^\(node:\d+\)/.test(l))
      .map((l) => {
        try {
          return JSON.parse(l);
        } catch {
          throw new Error(`${service} wrote a line that is not JSON: ${l.slice(0, 200)}`);
        }
      });
    expect(records.length).toBeGreaterThan(5);
    for (const r of records) {
      expect(r).toEqual(
        expect.objectContaining({
          level: expect.stringMatching(/^(trace|debug|info|warn|error|fatal)$/),
          time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
          service: `task-scheduler-${service}`,
          msg: expect.any(String),
        }),
      );
    }
    // No error is ever logged as an empty object (an Error's own properties are not enumerable): with a message.
    for (const r of records) {
      for (const key of ['error', 'err'])
        if (r[key] !== undefined) expect(r[key]).toEqual(expect.objectContaining({ message: expect.any(String) }));
    }
    // Nothing secret, whatever the level: task secrets, the API key (and its secret part), the sealing key.
    for (const secret of [shellSecret, headerSecret, stack.apiKey, stack.apiKey.split('_')[2], stack.config.SECRETS_KEY as string]) {
      expect(text).not.toContain(secret);
    }
    expect(text).not.toMatch(/"taskToken":"(?!\[redacted\])/);
    // The worker's SDK does log activity metadata with a task token (at debug): the redaction is what hides it.
    if (service === 'worker') expect(text).toContain('"taskToken":"[redacted]"');
    expect(text).not.toMatch(/"x-api-key":"(?!\[redacted\])/);
    // Nest's route table stays at debug.
    expect(records.filter((r) => r.level === 'info' && /Mapped \{/.test(r.msg))).toEqual([]);
  }

  const workerRecords = logs.worker
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
  const started = workerRecords.filter((r) => r.msg === 'attempt started');
  const ended = workerRecords.filter((r) => r.msg === 'attempt ended');
  // 1 + 2 + 1 attempts, each started and ended once, at info, with the run's ids.
  expect(started).toHaveLength(4);
  expect(ended).toHaveLength(4);
  for (const r of [...started, ...ended]) {
    expect(r).toMatchObject({ level: 'info', tenantId: expect.any(String), runId: expect.any(String), attempt: expect.any(Number) });
    expect(r.taskId).toEqual(expect.any(String));
  }
  const failedEnds = ended.filter((r) => r.runId === failing.id);
  expect(failedEnds.map((r) => [r.attempt, r.status, r.exitCode])).toEqual([
    [1, 'failed', 3],
    [2, 'failed', 3],
  ]);
  expect(failedEnds[0].error).toEqual({ message: 'command exited with code 3', type: 'ShellExitCode' });
  expect(ended.find((r) => r.runId === ok.id)).toMatchObject({ status: 'succeeded', taskId: ok.taskId, executor: 'shell' });
  expect(ended.find((r) => r.runId === http.id)).toMatchObject({ status: 'succeeded', httpStatus: 200, executor: 'http' });

  // Request lines: short, with the request id and (once authenticated) the tenant.
  const requests = logs.api
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .filter((r) => r.req && r.res);
  expect(requests.length).toBeGreaterThan(5);
  for (const r of requests) {
    expect(r.requestId).toEqual(expect.any(String));
    expect(JSON.stringify(r).length).toBeLessThan(700);
  }
  expect(requests.some((r) => r.tenantId && r.res.statusCode === 202)).toBe(true);
  expect(requests.find((r) => r.res.statusCode === 404)).toMatchObject({ level: 'info', msg: 'GET /v1/runs/not-a-run 404' });
}, 240_000);
