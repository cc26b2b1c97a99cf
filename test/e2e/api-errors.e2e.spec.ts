/* Bad input and foreign ids over HTTP: every case is a 4xx with a stable code, and nothing is written. */
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';

let stack: TestStack;
// This suite works in its own tenant: other suites write to the default tenant concurrently,
// and "nothing was written" is checked by counting this tenant's rows.
let own: { tenantId: string; apiKey: string };
let other: { tenantId: string; apiKey: string };
beforeAll(async () => {
  stack = await startStack('api-errors');
  own = await stack.createTenant(`errors-${Date.now()}`);
  other = await stack.createTenant(`errors-other-${Date.now()}`);
});
const request: TestStack['request'] = (method, path, opts = {}) => stack.request(method, path, { apiKey: own.apiKey, ...opts });
afterAll(async () => stack?.stop());

async function rowCounts(): Promise<Record<string, number>> {
  const [row] = await stack.db.query(
    `SELECT (SELECT count(*) FROM tasks WHERE tenant_id = ANY($1))::int AS tasks,
            (SELECT count(*) FROM runs WHERE tenant_id = ANY($1))::int AS runs,
            (SELECT count(*) FROM run_attempts WHERE tenant_id = ANY($1))::int AS attempts`,
    [[own.tenantId, other.tenantId]],
  );
  return row;
}

const valid = { name: 'ok-task', executor: 'shell', shell: { command: 'echo', args: ['hi'] } };

const badCreates: [string, { body?: unknown; rawBody?: string }, number, string, string?][] = [
  ['malformed JSON', { rawBody: '{"name": "x",' }, 400, 'MALFORMED_JSON'],
  [
    'unknown top-level field',
    { body: { ...valid, tenantId: '00000000-0000-0000-0000-000000000000' } },
    400,
    'VALIDATION_FAILED',
    'tenantId',
  ],
  ['a client-chosen id', { body: { ...valid, id: '00000000-0000-4000-8000-000000000001' } }, 400, 'VALIDATION_FAILED', 'id'],
  ['a status', { body: { ...valid, status: 'succeeded' } }, 400, 'VALIDATION_FAILED', 'status'],
  ['an attempt count', { body: { ...valid, attempt: 3 } }, 400, 'VALIDATION_FAILED', 'attempt'],
  ['a version', { body: { ...valid, version: 99 } }, 400, 'VALIDATION_FAILED', 'version'],
  [
    'unknown nested field',
    { body: { ...valid, shell: { command: 'echo', shellInjection: true } } },
    400,
    'VALIDATION_FAILED',
    'shell.shellInjection',
  ],
  ['missing name', { body: { executor: 'shell', shell: { command: 'echo' } } }, 400, 'VALIDATION_FAILED', 'name'],
  ['bad name', { body: { ...valid, name: '../etc' } }, 400, 'VALIDATION_FAILED', 'name'],
  ['unknown executor', { body: { ...valid, executor: 'python' } }, 400, 'VALIDATION_FAILED', 'executor'],
  ['missing shell spec', { body: { name: 'x', executor: 'shell' } }, 400, 'VALIDATION_FAILED', 'shell'],
  ['empty command', { body: { ...valid, shell: { command: '' } } }, 400, 'VALIDATION_FAILED', 'shell.command'],
  ['command and script', { body: { ...valid, shell: { command: 'echo', script: 'echo' } } }, 400, 'VALIDATION_FAILED', 'shell.command'],
  ['negative timeout', { body: { ...valid, timeoutSeconds: -5 } }, 400, 'VALIDATION_FAILED', 'timeoutSeconds'],
  ['fractional timeout', { body: { ...valid, timeoutSeconds: 1.5 } }, 400, 'VALIDATION_FAILED', 'timeoutSeconds'],
  ['zero attempts', { body: { ...valid, retry: { maximumAttempts: 0 } } }, 400, 'VALIDATION_FAILED', 'retry.maximumAttempts'],
  ['bad env name', { body: { ...valid, shell: { command: 'env', env: { 'A-B': 'x' } } } }, 400, 'VALIDATION_FAILED', 'shell.env'],
  ['array body', { body: [valid] }, 400, 'VALIDATION_FAILED', 'body'],
];

test.each(badCreates.map(([name, req, status, code, field]) => ({ name, req, status, code, field })))(
  'POST /v1/tasks with $name → $status $code, nothing written',
  async ({ req, status, code, field }) => {
    const before = await rowCounts();
    const res = await request('POST', '/v1/tasks', req);
    expect(res.status).toBe(status);
    expect(res.body.error.code).toBe(code);
    expect(typeof res.body.error.message).toBe('string');
    expect(res.body.error.message.length).toBeGreaterThan(5);
    if (field) expect(res.body.error.details.map((d: { field: string }) => d.field)).toContain(field);
    expect(await rowCounts()).toEqual(before);
  },
);

test('a body over the size limit gets 413 PAYLOAD_TOO_LARGE', async () => {
  const res = await request('POST', '/v1/tasks', { body: { ...valid, description: 'x'.repeat(stack.config.BODY_LIMIT_BYTES + 10) } });
  expect(res.status).toBe(413);
  expect(res.body.error.code).toBe('PAYLOAD_TOO_LARGE');
});

test('a duplicate task name gets 409 TASK_NAME_TAKEN', async () => {
  expect((await request('POST', '/v1/tasks', { body: { ...valid, name: 'dup' } })).status).toBe(201);
  const before = await rowCounts();
  const res = await request('POST', '/v1/tasks', { body: { ...valid, name: 'dup' } });
  expect(res.status).toBe(409);
  expect(res.body.error.code).toBe('TASK_NAME_TAKEN');
  expect(await rowCounts()).toEqual(before);
});

test.each([
  ['no key', null],
  ['garbage key', 'not-a-key'],
  ['unknown prefix', 'tsch_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
])('%s gets 401 UNAUTHENTICATED and writes nothing', async (_name, apiKey) => {
  const before = await rowCounts();
  const res = await request('POST', '/v1/tasks', { body: valid, apiKey });
  expect(res.status).toBe(401);
  expect(res.body.error.code).toBe('UNAUTHENTICATED');
  expect(await rowCounts()).toEqual(before);
});

test('a wrong secret on a real prefix answers exactly like an unknown prefix', async () => {
  const prefix = own.apiKey.split('_').slice(0, 2).join('_');
  const wrong = await request('GET', '/v1/tasks', { apiKey: `${prefix}_${'B'.repeat(40)}` });
  const unknown = await request('GET', '/v1/tasks', { apiKey: `tsch_ffffffffffff_${'B'.repeat(40)}` });
  expect(wrong.status).toBe(401);
  expect(unknown.status).toBe(401);
  const strip = (b: any) => ({ ...b.error, requestId: undefined });
  expect(strip(wrong.body)).toEqual(strip(unknown.body));
});

test("another tenant's task and run answer 404 exactly like missing ones, and nothing changes", async () => {
  const created = await request('POST', '/v1/tasks', {
    body: { ...valid, name: 'theirs', shell: { command: 'true' } },
    apiKey: other.apiKey,
  });
  expect(created.status).toBe(201);
  const theirRun = await request('POST', `/v1/tasks/${created.body.id}/runs`, { apiKey: other.apiKey });
  expect(theirRun.status).toBe(202);
  // Let their run finish first: its attempt rows are written in the background.
  await stack.waitForRun(theirRun.body.id, undefined, 60_000, other.apiKey);

  const before = await rowCounts();
  const getTask = await request('GET', `/v1/tasks/${created.body.id}`);
  const missingTask = await request('GET', '/v1/tasks/00000000-0000-4000-8000-000000000000');
  expect(getTask.status).toBe(404);
  expect(getTask.body.error.code).toBe('TASK_NOT_FOUND');
  expect(missingTask.status).toBe(404);
  expect(missingTask.body.error.code).toBe('TASK_NOT_FOUND');

  const runIt = await request('POST', `/v1/tasks/${created.body.id}/runs`);
  expect(runIt.status).toBe(404);
  expect(runIt.body.error.code).toBe('TASK_NOT_FOUND');

  const getRun = await request('GET', `/v1/runs/${theirRun.body.id}`);
  expect(getRun.status).toBe(404);
  expect(getRun.body.error.code).toBe('RUN_NOT_FOUND');

  const listed = await request('GET', '/v1/tasks?limit=200');
  expect(listed.body.items.map((t: { id: string }) => t.id)).not.toContain(created.body.id);
  const runs = await request('GET', '/v1/runs?limit=200');
  expect(runs.body.items.map((r: { id: string }) => r.id)).not.toContain(theirRun.body.id);
  expect(await rowCounts()).toEqual(before);
});

test('a malformed id or cursor is a 4xx, never a 500', async () => {
  expect((await request('GET', '/v1/tasks/not-a-uuid')).status).toBe(404);
  expect((await request('GET', '/v1/runs/1%20OR%201=1')).status).toBe(404);
  const cursor = await request('GET', '/v1/runs?cursor=garbage');
  expect(cursor.status).toBe(400);
  expect(cursor.body.error.code).toBe('INVALID_CURSOR');
  const limit = await request('GET', '/v1/tasks?limit=100000');
  expect(limit.status).toBe(400);
  expect(limit.body.error.code).toBe('VALIDATION_FAILED');
  const route = await request('GET', '/v1/nothing-here');
  expect(route.status).toBe(404);
  expect(route.body.error.code).toBe('ROUTE_NOT_FOUND');
});

test('health, readiness and the OpenAPI document are served', async () => {
  expect((await request('GET', '/health', { apiKey: null })).body).toEqual({ status: 'ok' });
  const ready = await request('GET', '/ready', { apiKey: null });
  expect(ready.status).toBe(200);
  expect(ready.body.checks).toEqual({ postgres: { ok: true }, temporal: { ok: true } });
  const doc = await request('GET', '/docs-json', { apiKey: null });
  expect(doc.status).toBe(200);
  expect(Object.keys(doc.body.paths)).toEqual(
    expect.arrayContaining(['/v1/tasks', '/v1/tasks/{id}', '/v1/tasks/{id}/runs', '/v1/runs', '/v1/runs/{id}']),
  );
  expect(doc.body.components.securitySchemes['api-key']).toMatchObject({ type: 'apiKey', in: 'header', name: 'x-api-key' });
});
