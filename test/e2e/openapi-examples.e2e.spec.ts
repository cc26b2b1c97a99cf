/* Every request example of the OpenAPI document, sent to a real stack (API, Temporal dev server, PostgreSQL,
 * workers): each must succeed with the operation's documented success status and headers. Swagger UI's
 * "Try it out" sends these examples, so a failing example is a broken page. The document is the one served at
 * /docs-json, and it must equal the one the build dumps (built the same way, without any connection). */
import { EXAMPLE_IDS } from '../../apps/api/src/common/openapi-examples';
import { operationsOf } from '../../apps/api/src/common/openapi';
import { createOpenApiDocument } from '../../apps/api/src/openapi-document';
import { randomUUID } from 'node:crypto';
import { ContractValidator } from '../support/openapi-contract';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';

type Json = Record<string, any>;

let stack: TestStack;
let document: Json;
/** The one check of answers against the document, shared with the fuzz test and the typed client. */
let contract: ContractValidator;
/** Path parameter values by the path's collection, filled with resources created before the examples run. */
const ids: Record<string, string> = {};

/** The tenant the examples work in: its own, so example names (`hello`, …) never meet another suite's in the default tenant. */
let workspaceKey: string;

/** Sends as the workspace tenant's admin, except the platform routes (tenants), which need the platform admin. */
function send(method: string, path: string, opts: Parameters<TestStack['request']>[2] = {}): ReturnType<TestStack['request']> {
  const apiKey = opts.apiKey !== undefined ? opts.apiKey : path.startsWith('/v1/tenants') ? stack.apiKey : workspaceKey;
  return stack.request(method, path, { ...opts, apiKey });
}

async function ok(method: string, path: string, body?: unknown): Promise<Json> {
  const res = await send(method, path, { body });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

beforeAll(async () => {
  stack = await startStack('openapi-examples');
  const docs = await send('GET', '/docs-json', { apiKey: null });
  expect(docs.status).toBe(200);
  document = docs.body;
  contract = new ContractValidator(docs.body);
  workspaceKey = (await stack.createTenant(`examples-ws-${Date.now()}`)).apiKey;

  const task = await ok('POST', '/v1/tasks', { name: 'examples-target', executor: 'shell', shell: { command: 'echo', args: ['x'] } });
  ids.tasks = task.id;
  const calendar = await ok('POST', '/v1/calendars', { name: 'examples-calendar', holidays: ['2027-12-24'] });
  ids.calendars = calendar.id;
  const schedule = await ok('POST', '/v1/schedules', { name: 'examples-schedule', taskId: task.id, spec: { cron: ['0 4 * * *'] } });
  ids.schedules = schedule.id;
  const pipeline = await ok('POST', '/v1/pipelines', {
    name: 'examples-pipeline',
    parameters: [{ name: 'date', default: '2026-12-01' }],
    steps: [{ key: 'a', task: task.id }],
  });
  ids.pipelines = pipeline.id;
  const channel = await ok('POST', '/v1/alert-channels', { name: 'examples-channel', type: 'webhook', url: 'https://hooks.example.com/x' });
  ids['alert-channels'] = channel.id;
  const rule = await ok('POST', '/v1/alert-rules', {
    name: 'examples-rule',
    kind: 'consecutive_failures',
    taskId: task.id,
    failures: 2,
    channelId: channel.id,
  });
  ids['alert-rules'] = rule.id;
  const tenant = await stack.createTenant(`examples-${Date.now()}`);
  ids.tenants = tenant.tenantId;
});

afterAll(async () => {
  await stack?.stop();
});

test('/docs-json is the document the build dumps', async () => {
  expect(document).toEqual(JSON.parse(JSON.stringify(await createOpenApiDocument())));
});

/** The example with its placeholder ids replaced by the resources created above. */
function resolve(value: unknown): unknown {
  const byExampleId: Record<string, string> = {
    [EXAMPLE_IDS.task]: ids.tasks,
    [EXAMPLE_IDS.calendar]: ids.calendars,
    [EXAMPLE_IDS.alertChannel]: ids['alert-channels'],
  };
  return JSON.parse(JSON.stringify(value), (_key, v: unknown) => (typeof v === 'string' && byExampleId[v] ? byExampleId[v] : v));
}

function concretePath(path: string): string {
  return path.replace(/\{(\w+)\}/g, (_m, name: string) => {
    const collection = /^\/v1\/([a-z-]+)\//.exec(path)?.[1] ?? '';
    const id = ids[collection];
    if (name !== 'id' || !id) throw new Error(`no resource for ${name} in ${path}: create one in beforeAll`);
    return id;
  });
}

test('every request example succeeds with its documented status and headers', async () => {
  const operations = operationsOf(document as never);
  const withBody = operations.filter((o) => o.op.requestBody);
  expect(withBody.length).toBeGreaterThan(10);
  const results: string[] = [];
  const failures: string[] = [];
  let executed = 0;
  for (const { path, method, op } of withBody) {
    const media = (op.requestBody as Json).content?.['application/json'];
    const examples = Object.entries((media?.examples ?? {}) as Record<string, { value: unknown }>);
    if (!examples.length) failures.push(`${op.operationId}: no request example`);
    const [success, response] = Object.entries(op.responses).find(([s]) => s.startsWith('2')) as [string, Json];
    for (const [name, example] of examples) {
      const res = await send(method.toUpperCase(), concretePath(path), { body: resolve(example.value) });
      executed++;
      const where = `${op.operationId}/${name}`;
      results.push(`${where}: ${res.status}`);
      if (String(res.status) !== success) {
        failures.push(`${where}: ${res.status} instead of ${success}: ${JSON.stringify(res.body)}`);
        continue;
      }
      // Every documented header is there, except the one that only a replay carries.
      for (const header of Object.keys(response.headers ?? {})) {
        if (header === 'Idempotent-Replayed') continue;
        if (!res.headers.get(header)) failures.push(`${where}: no ${header} header`);
      }
      const problems = contract.check(path, method, res.status, res.body, res.headers);
      if (problems.length) failures.push(`${where}: does not match the document: ${problems.join('; ')}`);
      const location = res.headers.get('location');
      if (success === '201' && location !== `${path.replace(/\/$/, '')}/${res.body.id}`) failures.push(`${where}: Location ${location}`);
    }
  }
  expect(failures).toEqual([]);
  // Reported for the closing note of the contract work.
  process.stdout.write(`openapi examples executed: ${executed}\n${results.join('\n')}\n`);
  expect(executed).toBeGreaterThanOrEqual(withBody.length);
});

/** The codes an error response's description names ("… Codes: A, B."). */
const codesOf = (response: Json | undefined): string[] => /Codes: ([A-Z_, ]+)\./.exec(String(response?.description))?.[1].split(', ') ?? [];

test('documented errors are real: 401 without a key, 404 for an unknown id, 400 for an unknown field', async () => {
  const failures: string[] = [];
  let sent = 0;
  const expectError = (
    where: string,
    res: { status: number; body: any; headers: Headers },
    status: string,
    op: Json,
    path: string,
    method: string,
  ) => {
    sent++;
    if (String(res.status) !== status) return failures.push(`${where}: ${res.status} instead of ${status}: ${JSON.stringify(res.body)}`);
    const problems = contract.check(path, method, res.status, res.body, res.headers);
    if (problems.length) failures.push(`${where}: not the documented Error body: ${problems.join('; ')}`);
    if (!res.headers.get('x-request-id') || res.body.error.requestId !== res.headers.get('x-request-id'))
      failures.push(`${where}: request id`);
    const named = codesOf(op.responses[status]);
    if (status !== '404' || named.length) {
      if (!named.includes(res.body.error.code))
        failures.push(`${where}: ${res.body.error.code} is not among the documented ${named.join(', ')}`);
    }
  };
  for (const { path, method, op } of operationsOf(document as never) as { path: string; method: string; op: Json }[]) {
    const example = Object.values((op.requestBody?.content?.['application/json']?.examples ?? {}) as Record<string, { value: unknown }>)[0];
    const body = op.requestBody ? resolve(example?.value ?? {}) : undefined;
    const where = (what: string) => `${op.operationId} ${what}`;
    // Credentials are checked before anything else: no resource is needed for the 401.
    if (op.security.length) {
      expectError(
        where('without a key'),
        await send(method.toUpperCase(), path.replace(/\{\w+\}/g, randomUUID()), { body, apiKey: null }),
        '401',
        op,
        path,
        method,
      );
    }
    if (path.includes('{id}')) {
      const unknown = path.replace('{id}', randomUUID());
      expectError(where('unknown id'), await send(method.toUpperCase(), unknown, { body }), '404', op, path, method);
    }
    if (op.requestBody) {
      const wrong = { ...(body as Json), notAField: 1 };
      expectError(where('unknown field'), await send(method.toUpperCase(), concretePath(path), { body: wrong }), '400', op, path, method);
    }
  }
  expect(failures).toEqual([]);
  process.stdout.write(`openapi error checks sent: ${sent}\n`);
});

test('the headers the document promises: ETag and If-Match, Idempotent-Replayed, Retry-After', async () => {
  const ops = operationsOf(document as never) as { path: string; method: string; op: Json }[];
  const op = (id: string) => ops.find((o) => o.op.operationId === id)!.op;

  const read = await send('GET', `/v1/tasks/${ids.tasks}`);
  expect(Object.keys(op('getTask').responses['200'].headers)).toContain('ETag');
  expect(read.headers.get('etag')).toMatch(/^".+"$/);
  const stale = await send('PATCH', `/v1/tasks/${ids.tasks}`, { body: { priority: 5 }, headers: { 'if-match': '"999999"' } });
  expect(stale.status).toBe(412);
  expect(codesOf(op('updateTask').responses['412'])).toContain(stale.body.error.code);
  const fresh = await send('PATCH', `/v1/tasks/${ids.tasks}`, {
    body: { priority: 5 },
    headers: { 'if-match': read.headers.get('etag')! },
  });
  expect(fresh.status).toBe(200);
  expect(fresh.headers.get('etag')).not.toBe(read.headers.get('etag'));

  const key = { 'idempotency-key': `examples-${Date.now()}` };
  const first = await send('POST', `/v1/tasks/${ids.tasks}/runs`, { body: {}, headers: key });
  const again = await send('POST', `/v1/tasks/${ids.tasks}/runs`, { body: {}, headers: key });
  expect([first.status, again.status]).toEqual([202, 202]);
  expect([first.headers.get('idempotent-replayed'), again.headers.get('idempotent-replayed')]).toEqual([null, 'true']);
  expect(again.headers.get('location')).toBe(`/v1/runs/${first.body.id}`);

  // A tenant allowed one request a minute: the second answers 429 with Retry-After, as documented.
  const slow = await stack.createTenant(`examples-slow-${Date.now()}`, { rateLimitPerMinute: 1 });
  await send('GET', '/v1/tasks', { apiKey: slow.apiKey });
  const limited = await send('GET', '/v1/tasks', { apiKey: slow.apiKey });
  expect(limited.status).toBe(429);
  expect(Object.keys(op('listTasks').responses['429'].headers)).toContain('Retry-After');
  expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  expect(codesOf(op('listTasks').responses['429'])).toContain(limited.body.error.code);
});
