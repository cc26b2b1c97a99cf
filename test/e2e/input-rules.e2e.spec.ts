/* The input rules (docs/api.md "Input rules"): every attack found by the black-box run of issue 10 gets
 * a 4xx in the error format naming the field, and nothing is written. */
import { connect } from 'node:net';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';

let stack: TestStack;
let own: { tenantId: string; apiKey: string };
let taskId: string;
let scheduleId: string;
let calendarId: string;

const NUL = '\u0000';
const CORS_ORIGIN = 'http://client.example';
const shellTask = { name: 'ok-task', executor: 'shell', shell: { command: 'true' } };
const spec = { cron: ['0 3 * * *'] };

beforeAll(async () => {
  // Workers are not needed: refused requests start nothing, accepted runs may stay queued.
  stack = await startStack('input-rules', { workers: false, env: { CORS_ORIGINS: CORS_ORIGIN } });
  own = await stack.createTenant(`input-${Date.now()}`);
  const task = await request('POST', '/v1/tasks', { body: { ...shellTask, name: 'base' } });
  expect(task.status).toBe(201);
  taskId = task.body.id;
  const schedule = await request('POST', '/v1/schedules', { body: { name: 'base', taskId, spec } });
  expect(schedule.status).toBe(201);
  scheduleId = schedule.body.id;
  const calendar = await request('POST', '/v1/calendars', { body: { name: 'base' } });
  expect(calendar.status).toBe(201);
  calendarId = calendar.body.id;
});
afterAll(async () => stack?.stop());

const request: TestStack['request'] = (method, path, opts = {}) => stack.request(method, path, { apiKey: own.apiKey, ...opts });

/** Everything the tenant owns, as one comparable value (audit events of refusals excluded: they are meant to be written). */
async function snapshot(): Promise<string> {
  const rows = await stack.db.query(
    `SELECT (SELECT json_agg(t ORDER BY id) FROM tasks t WHERE tenant_id = $1) AS tasks,
            (SELECT json_agg(s ORDER BY id) FROM schedules s WHERE tenant_id = $1) AS schedules,
            (SELECT json_agg(c ORDER BY id) FROM calendars c WHERE tenant_id = $1) AS calendars,
            (SELECT json_agg(k ORDER BY id) FROM api_keys k WHERE tenant_id = $1) AS keys,
            (SELECT count(*) FROM runs WHERE tenant_id = $1) AS runs,
            (SELECT row_to_json(x) FROM tenants x WHERE id = $1) AS tenant`,
    [own.tenantId],
  );
  return JSON.stringify(rows);
}

function nested(levels: number, leaf: unknown = 1): unknown {
  let v = leaf;
  for (let i = 0; i < levels; i++) v = { a: v };
  return v;
}
function nestedText(levels: number): string {
  return '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);
}

type Attack = {
  name: string;
  method: string;
  path: () => string;
  body?: unknown;
  rawBody?: string;
  field: string;
  status?: number;
  code?: string;
  /** Tenant routes need the platform admin key. */
  platform?: boolean;
};

const attacks: Attack[] = [
  // NUL in every kind of string field
  {
    name: 'NUL in task description',
    method: 'POST',
    path: () => '/v1/tasks',
    body: { ...shellTask, description: `a${NUL}b` },
    field: 'description',
  },
  {
    name: 'NUL in metadata value',
    method: 'POST',
    path: () => '/v1/tasks',
    body: { ...shellTask, metadata: { k: `v${NUL}` } },
    field: 'metadata.k',
  },
  {
    name: 'NUL in metadata key',
    method: 'POST',
    path: () => '/v1/tasks',
    body: { ...shellTask, metadata: { [`k${NUL}`]: 'v' } },
    field: 'metadata',
  },
  { name: 'NUL in a tag', method: 'POST', path: () => '/v1/tasks', body: { ...shellTask, tags: ['a', `b${NUL}`] }, field: 'tags[1]' },
  {
    name: 'NUL in script',
    method: 'POST',
    path: () => '/v1/tasks',
    body: { ...shellTask, shell: { script: `true${NUL}` } },
    field: 'shell.script',
  },
  {
    name: 'NUL in args',
    method: 'POST',
    path: () => '/v1/tasks',
    body: { ...shellTask, shell: { command: 'echo', args: ['x', 'y', NUL] } },
    field: 'shell.args[2]',
  },
  {
    name: 'NUL in an HTTP body',
    method: 'POST',
    path: () => '/v1/tasks',
    body: { name: 'h', executor: 'http', http: { method: 'POST', url: 'https://example.com/', body: { x: NUL } } },
    field: 'http.body.x',
  },
  {
    name: 'NUL in a calendar description',
    method: 'POST',
    path: () => '/v1/calendars',
    body: { name: 'c', description: NUL },
    field: 'description',
  },
  {
    name: 'NUL in a schedule description',
    method: 'POST',
    path: () => '/v1/schedules',
    body: { name: 's', taskId: 'x', spec, description: NUL },
    field: 'description',
  },
  { name: 'NUL in a schedule note', method: 'POST', path: () => `/v1/schedules/${scheduleId}/pause`, body: { note: NUL }, field: 'note' },
  { name: 'NUL in an api-key name', method: 'POST', path: () => '/v1/api-keys', body: { name: NUL, role: 'readonly' }, field: 'name' },
  {
    name: 'NUL in a tenant name',
    method: 'PATCH',
    path: () => `/v1/tenants/${own.tenantId}`,
    body: { name: `x${NUL}` },
    field: 'name',
    platform: true,
  },
  {
    name: 'NUL in a webhook URL',
    method: 'PUT',
    path: () => '/v1/alert-settings',
    body: { webhookUrl: `https://example.com/${NUL}` },
    field: 'webhookUrl',
  },
  { name: 'NUL in trigger env', method: 'POST', path: () => `/v1/tasks/${taskId}/runs`, body: { env: { A: NUL } }, field: 'env.A' },
  {
    name: 'a lone surrogate',
    method: 'POST',
    path: () => '/v1/tasks',
    rawBody: JSON.stringify({ ...shellTask, description: 'x' }).replace('"x"', '"\\ud800"'),
    field: 'description',
  },
  {
    name: 'an escape character',
    method: 'POST',
    path: () => '/v1/tasks',
    body: { ...shellTask, description: 'a\u001bb' },
    field: 'description',
  },
  // deep nesting
  {
    name: 'metadata nested 10,000 levels',
    method: 'POST',
    path: () => '/v1/tasks',
    rawBody: `{"name":"d","executor":"shell","shell":{"command":"true"},"metadata":${nestedText(10_000)}}`,
    field: 'metadata',
  },
  {
    name: 'shell nested 10,000 levels',
    method: 'POST',
    path: () => '/v1/tasks',
    rawBody: `{"name":"d","executor":"shell","shell":${nestedText(10_000)}}`,
    field: 'shell',
  },
  {
    name: 'trigger env nested 10,000 levels',
    method: 'POST',
    path: () => `/v1/tasks/${taskId}/runs`,
    rawBody: `{"env":${nestedText(10_000)}}`,
    field: 'env',
  },
  {
    name: 'preview calendars nested 10,000 levels',
    method: 'POST',
    path: () => '/v1/schedules/preview',
    rawBody: `{"calendars":[${nestedText(10_000)}]}`,
    field: 'calendars',
  },
  {
    name: 'metadata nested 1,000 levels',
    method: 'POST',
    path: () => '/v1/tasks',
    body: { ...shellTask, metadata: nested(1_000) },
    field: 'metadata',
  },
  {
    name: 'metadata nested 9 levels',
    method: 'POST',
    path: () => '/v1/tasks',
    body: { ...shellTask, metadata: nested(9) },
    field: 'metadata',
  },
  // null where a value is required
  {
    name: 'null tenant name',
    method: 'PATCH',
    path: () => `/v1/tenants/${own.tenantId}`,
    body: { name: null },
    field: 'name',
    platform: true,
  },
  {
    name: 'null tenant status',
    method: 'PATCH',
    path: () => `/v1/tenants/${own.tenantId}`,
    body: { status: null },
    field: 'status',
    platform: true,
  },
  {
    name: 'null tenant limits',
    method: 'PATCH',
    path: () => `/v1/tenants/${own.tenantId}`,
    body: { limits: null },
    field: 'limits',
    platform: true,
  },
  {
    name: 'null tenant limit',
    method: 'PATCH',
    path: () => `/v1/tenants/${own.tenantId}`,
    body: { limits: { maxTasks: null } },
    field: 'limits.maxTasks',
    platform: true,
  },
  { name: 'null script', method: 'POST', path: () => '/v1/tasks', body: { ...shellTask, shell: { script: null } }, field: 'shell.script' },
  { name: 'null description', method: 'POST', path: () => '/v1/tasks', body: { ...shellTask, description: null }, field: 'description' },
  { name: 'null tags in a task PATCH', method: 'PATCH', path: () => `/v1/tasks/${taskId}`, body: { tags: null }, field: 'tags' },
  {
    name: 'null script in a task PATCH',
    method: 'PATCH',
    path: () => `/v1/tasks/${taskId}`,
    body: { shell: { script: null } },
    field: 'shell.script',
  },
  {
    name: 'null holidays in a calendar PATCH',
    method: 'PATCH',
    path: () => `/v1/calendars/${calendarId}`,
    body: { holidays: null },
    field: 'holidays',
  },
  // prototype keys and unbounded numbers
  {
    name: '__proto__ key',
    method: 'POST',
    path: () => '/v1/tasks',
    rawBody: `{"name":"p","executor":"shell","shell":{"command":"true"},"__proto__":{"x":1}}`,
    field: '__proto__',
  },
  {
    name: 'constructor key',
    method: 'POST',
    path: () => '/v1/tasks',
    body: { ...shellTask, metadata: { a: { constructor: 1 } } },
    field: 'metadata.a.constructor',
  },
  { name: 'prototype key', method: 'POST', path: () => '/v1/calendars', body: { name: 'c', prototype: 1 }, field: 'prototype' },
  {
    name: 'remainingActions 1e20',
    method: 'PATCH',
    path: () => `/v1/schedules/${scheduleId}`,
    rawBody: '{"policies":{"remainingActions":1e20}}',
    field: 'policies.remainingActions',
  },
  {
    name: 'offsetSeconds 1e20',
    method: 'POST',
    path: () => '/v1/schedules/preview',
    rawBody: '{"intervals":[{"everySeconds":60,"offsetSeconds":1e20}]}',
    field: 'intervals[0].offsetSeconds',
  },
];

test.each(attacks)('$name → 400 naming $field, nothing written', async (a) => {
  const before = await snapshot();
  const payload = a.rawBody !== undefined ? { rawBody: a.rawBody } : { body: a.body };
  const res = await request(a.method, a.path(), { ...payload, ...(a.platform ? { apiKey: stack.apiKey } : {}) });
  expect(res.status).toBe(a.status ?? 400);
  expect(res.body.error.code).toBe(a.code ?? 'VALIDATION_FAILED');
  expect(Array.isArray(res.body.error.details)).toBe(true);
  expect(res.body.error.details.map((d: { field: string }) => d.field)).toContain(a.field);
  for (const d of res.body.error.details) expect(typeof d.message).toBe('string');
  expect(await snapshot()).toEqual(before);
});

test('metadata within the bounds is stored and read back', async () => {
  const metadata = { deep: nested(7, 'leaf'), list: [1, null, true, 'x\ty'], empty: {} };
  const res = await request('POST', '/v1/tasks', { body: { ...shellTask, name: 'meta', metadata } });
  expect(res.status).toBe(201);
  expect((await request('GET', `/v1/tasks/${res.body.id}`)).body.metadata).toEqual(metadata);
});

test('remainingActions null clears the limit (declared nullable), a number within bounds is kept', async () => {
  const set = await request('PATCH', `/v1/schedules/${scheduleId}`, { body: { policies: { remainingActions: 5 } } });
  expect(set.status).toBe(200);
  expect(set.body.policies.remainingActions).toBe(5);
  const cleared = await request('PATCH', `/v1/schedules/${scheduleId}`, { body: { policies: { remainingActions: null } } });
  expect(cleared.status).toBe(200);
  expect(cleared.body.policies.remainingActions ?? null).toBeNull();
});

test.each([
  ['no content-type', {}],
  ['text/plain', { 'content-type': 'text/plain' }],
  ['form', { 'content-type': 'application/x-www-form-urlencoded' }],
])('a body with %s → 415 UNSUPPORTED_MEDIA_TYPE', async (_name, headers) => {
  const before = await snapshot();
  const res = await fetch(`${stack.baseUrl}/v1/tasks`, {
    method: 'POST',
    headers: { 'x-api-key': own.apiKey, ...headers },
    body: new TextEncoder().encode(JSON.stringify(shellTask)),
  });
  expect(res.status).toBe(415);
  const body = (await res.json()) as { error: { code: string; details: { field: string }[] } };
  expect(body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  expect(body.error.details.map((d) => d.field)).toContain('content-type');
  expect(await snapshot()).toEqual(before);
});

test('a bodiless POST needs no content-type', async () => {
  const res = await fetch(`${stack.baseUrl}/v1/schedules/${scheduleId}/resume`, { method: 'POST', headers: { 'x-api-key': own.apiKey } });
  expect(res.status).toBe(200);
});

test.each([
  ['cursor=%00', 'cursor'],
  ['limit=-1', 'limit'],
  ['limit=1e3', 'limit'],
  ['cursor=a%01b', 'cursor'],
])('query %s → 400 naming %s', async (query, field) => {
  const res = await request('GET', `/v1/tasks?${query}`);
  expect(res.status).toBe(400);
  expect(res.body.error.details.map((d: { field: string }) => d.field)).toContain(field);
});

test('a NUL in a path id → 4xx in the error format', async () => {
  const res = await request('GET', '/v1/tasks/%00');
  expect(res.status).toBeGreaterThanOrEqual(400);
  expect(res.status).toBeLessThan(500);
  expect(typeof res.body.error.code).toBe('string');
});

test('an Idempotency-Key with a control character the HTTP layer lets through → 400 in the error format', async () => {
  const res = await request('POST', `/v1/tasks/${taskId}/runs`, { body: {}, headers: { 'idempotency-key': 'a\u00ffb' } });
  expect(res.status).toBe(400);
  expect(res.body.error.code).toBe('IDEMPOTENCY_KEY_INVALID');
});

test('details is an array of objects with message for every code', async () => {
  const forbidden = await stack.request('POST', '/v1/tenants', { apiKey: own.apiKey, body: { slug: 'x', name: 'x' } });
  expect(forbidden.status).toBe(403);
  expect(Array.isArray(forbidden.body.error.details)).toBe(true);
  expect(forbidden.body.error.details[0]).toMatchObject({ message: expect.any(String), permission: 'tenants:admin' });
  const foreign = await request('POST', '/v1/api-keys', {
    body: { name: 'k', role: 'readonly', tenantId: '00000000-0000-4000-8000-000000000000' },
  });
  expect(foreign.status).toBe(403);
  expect(foreign.body.error.details).toEqual([expect.objectContaining({ field: 'tenantId', message: expect.any(String) })]);
});

test('codes about one input name it: INVALID_CURSOR, IDEMPOTENCY_KEY_INVALID, an unsupported charset', async () => {
  const cursor = await request('GET', '/v1/tasks?cursor=garbage');
  expect(cursor.body.error).toMatchObject({ code: 'INVALID_CURSOR', details: [expect.objectContaining({ field: 'cursor' })] });
  const key = await request('POST', `/v1/tasks/${taskId}/runs`, { body: {}, headers: { 'idempotency-key': ' ' } });
  expect(key.body.error).toMatchObject({
    code: 'IDEMPOTENCY_KEY_INVALID',
    details: [expect.objectContaining({ field: 'idempotency-key' })],
  });
  const charset = await request('POST', '/v1/calendars', {
    body: { name: 'cs' },
    headers: { 'content-type': 'application/json; charset=latin1' },
  });
  expect(charset.status).toBe(415);
  expect(charset.body.error).toMatchObject({
    code: 'UNSUPPORTED_MEDIA_TYPE',
    details: [expect.objectContaining({ field: 'content-type' })],
  });
});

test('a schedule and calendar still use their bounds: count above 1000 in preview', async () => {
  const res = await request('GET', `/v1/schedules/${scheduleId}/preview?count=1001`);
  expect(res.status).toBe(400);
  expect(res.body.error.details.map((d: { field: string }) => d.field)).toContain('count');
  expect(calendarId).toBeTruthy();
});

/** Sends bytes fetch() refuses to send (a control character in a header) and returns the raw answer. */
function rawRequest(head: Buffer): Promise<string> {
  const { hostname, port } = new URL(stack.baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.end(head));
    let answer = '';
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer in 10 s')));
    socket.on('data', (chunk) => (answer += chunk));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
}

test.each([
  ['a NUL in Idempotency-Key', 'idempotency-key: a\u0000b'],
  ['an escape in x-api-key', 'x-api-key: \u001b[31m'],
  ['a DEL in If-Match', 'if-match: "1\u007f"'],
])('%s → 400 MALFORMED_REQUEST in the error format, nothing written', async (_name, header) => {
  const before = await snapshot();
  const answer = await rawRequest(
    Buffer.from(
      `POST /v1/tasks/${taskId}/runs HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2\r\n${header}\r\n\r\n{}`,
      'latin1',
    ),
  );
  expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
  const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
  expect(body.error).toMatchObject({ code: 'MALFORMED_REQUEST', details: [{ field: 'headers', message: expect.any(String) }] });
  expect(await snapshot()).toEqual(before);
});

test('headers over the size limit → 431 HEADERS_TOO_LARGE in the error format', async () => {
  const answer = await rawRequest(Buffer.from(`GET /v1/tasks HTTP/1.1\r\nhost: x\r\nx-filler: ${'a'.repeat(20_000)}\r\n\r\n`));
  expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 431 Request Header Fields Too Large');
  expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)).error.code).toBe('HEADERS_TOO_LARGE');
});

test('an opaque JSON payload is bounded by bytes, not by its number of values: a ~60 KB array body is stored', async () => {
  const body = Array.from({ length: 15_000 }, (_, i) => i % 1000); // 15,000 values, ~57 KB
  expect(JSON.stringify(body).length).toBeGreaterThan(50_000);
  const task = await request('POST', '/v1/tasks', {
    body: { name: 'big-body', executor: 'http', http: { url: 'http://localhost:9/hook', method: 'POST', body } },
  });
  expect(task.status).toBe(201);
  expect(task.body.http.body).toEqual(body);
  const run = await request('POST', `/v1/tasks/${task.body.id}/runs`, { body: { body: body.slice().reverse() } });
  expect(run.status).toBe(202);
  // Depth still is bounded inside an opaque payload.
  const deep = await request('POST', '/v1/tasks', {
    rawBody: `{"name":"deep-body","executor":"http","http":{"url":"http://localhost:9/","body":${'['.repeat(40)}${']'.repeat(40)}}}`,
  });
  expect(deep.status).toBe(400);
  expect(deep.body.error.details.map((d: { field: string }) => d.field)).toContain('http');
});

test('http.body null is refused with a message saying how to send JSON null', async () => {
  const before = await snapshot();
  const res = await request('POST', '/v1/tasks', {
    body: { name: 'null-body', executor: 'http', http: { url: 'http://localhost:9/', body: null } },
  });
  expect(res.status).toBe(400);
  expect(res.body.error.details).toContainEqual(
    expect.objectContaining({ field: 'http.body', message: expect.stringContaining('"null"') }),
  );
  expect(await snapshot()).toEqual(before);
});

test('a PATCH may say application/merge-patch+json; other methods and other +json types get 415', async () => {
  const patch = (method: string, path: string, type: string, body: unknown) =>
    fetch(`${stack.baseUrl}${path}`, { method, headers: { 'x-api-key': own.apiKey, 'content-type': type }, body: JSON.stringify(body) });
  const merged = await patch('PATCH', `/v1/calendars/${calendarId}`, 'application/merge-patch+json', { description: 'merged' });
  expect(merged.status).toBe(200);
  expect(((await merged.json()) as { description: string }).description).toBe('merged');
  const before = await snapshot();
  for (const [method, path, type] of [
    ['POST', '/v1/calendars', 'application/merge-patch+json'],
    ['PATCH', `/v1/calendars/${calendarId}`, 'application/json-patch+json'],
    ['PATCH', `/v1/calendars/${calendarId}`, 'application/vnd.example+json'],
  ]) {
    const res = await patch(method!, path!, type!, method === 'POST' ? { name: 'mp' } : { description: 'no' });
    expect(res.status).toBe(415);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  }
  expect(await snapshot()).toEqual(before);
});

test('CORS: a preflight allows If-Match and a bearer token; scripts may read ETag, Location and x-request-id', async () => {
  const preflight = await fetch(`${stack.baseUrl}/v1/tasks/${taskId}`, {
    method: 'OPTIONS',
    headers: {
      origin: CORS_ORIGIN,
      'access-control-request-method': 'PATCH',
      'access-control-request-headers': 'authorization, content-type, if-match, idempotency-key',
    },
  });
  expect(preflight.status).toBe(204);
  expect(preflight.headers.get('access-control-allow-origin')).toBe(CORS_ORIGIN);
  const allowed = (preflight.headers.get('access-control-allow-headers') ?? '').split(',').map((h) => h.trim().toLowerCase());
  expect(allowed).toEqual(expect.arrayContaining(['authorization', 'content-type', 'if-match', 'idempotency-key', 'x-api-key']));

  const read = await fetch(`${stack.baseUrl}/v1/tasks/${taskId}`, { headers: { origin: CORS_ORIGIN, 'x-api-key': own.apiKey } });
  expect(read.status).toBe(200);
  expect(read.headers.get('etag')).toMatch(/^"\d+"$/);
  const exposed = (read.headers.get('access-control-expose-headers') ?? '').split(',').map((h) => h.trim().toLowerCase());
  expect(exposed).toEqual(expect.arrayContaining(['etag', 'location', 'retry-after', 'idempotent-replayed', 'x-request-id']));

  // An origin that is not listed gets no CORS headers.
  const foreign = await fetch(`${stack.baseUrl}/v1/tasks/${taskId}`, {
    headers: { origin: 'http://evil.example', 'x-api-key': own.apiKey },
  });
  expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
});
