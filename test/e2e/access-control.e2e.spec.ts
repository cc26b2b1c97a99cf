/* API keys, roles and the audit log over HTTP against the real API and PostgreSQL. */
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack('access');
});
afterAll(async () => stack?.stop());

async function newKey(body: Record<string, unknown>, apiKey?: string): Promise<{ id: string; key: string; prefix: string }> {
  const res = await stack.request('POST', '/v1/api-keys', { body: { name: 'k', ...body }, apiKey });
  expect(res.status).toBe(201);
  return res.body;
}

const task = (name: string) => ({ name, executor: 'shell', shell: { command: 'true' } });

test('a created key is shown once, works at once, is listed without its secret, and stops working when revoked', async () => {
  const created = await newKey({ name: 'deployer', role: 'operator' });
  expect(created.key).toMatch(/^tsch_[0-9a-f]{12}_[A-Za-z0-9]{40}$/);
  expect(created.key.startsWith(`${created.prefix}_`)).toBe(true);

  expect((await stack.request('POST', '/v1/tasks', { body: task('made-by-operator'), apiKey: created.key })).status).toBe(201);

  const listed = await stack.request('GET', '/v1/api-keys?limit=200');
  const entry = listed.body.items.find((k: { id: string }) => k.id === created.id);
  expect(entry).toMatchObject({ name: 'deployer', role: 'operator', prefix: created.prefix, revokedAt: null });
  expect(entry.lastUsedAt).not.toBeNull();
  expect(JSON.stringify(listed.body)).not.toContain(created.key.split('_')[2]);
  for (const hidden of ['key', 'secret', 'secretHash']) expect(entry).not.toHaveProperty(hidden);

  const revoked = await stack.request('DELETE', `/v1/api-keys/${created.id}`);
  expect(revoked.status).toBe(200);
  expect(revoked.body.revokedAt).not.toBeNull();
  const after = await stack.request('GET', '/v1/tasks', { apiKey: created.key });
  expect(after.status).toBe(401);
  expect(after.body.error.code).toBe('UNAUTHENTICATED');
});

test('rotation: a new key works before the old one is revoked, and the old one fails after', async () => {
  const oldKey = await newKey({ role: 'operator' });
  const newer = await newKey({ role: 'operator' });
  expect((await stack.request('GET', '/v1/tasks', { apiKey: oldKey.key })).status).toBe(200);
  expect((await stack.request('GET', '/v1/tasks', { apiKey: newer.key })).status).toBe(200);
  await stack.request('DELETE', `/v1/api-keys/${oldKey.id}`);
  expect((await stack.request('GET', '/v1/tasks', { apiKey: oldKey.key })).status).toBe(401);
  expect((await stack.request('GET', '/v1/tasks', { apiKey: newer.key })).status).toBe(200);
});

test('an expired key gets 401', async () => {
  const k = await newKey({ role: 'readonly', expiresAt: new Date(Date.now() + 1500).toISOString() });
  expect((await stack.request('GET', '/v1/tasks', { apiKey: k.key })).status).toBe(200);
  await new Promise((r) => setTimeout(r, 1700));
  expect((await stack.request('GET', '/v1/tasks', { apiKey: k.key })).status).toBe(401);
});

test('no issued key is stored anywhere in the database', async () => {
  const k = await newKey({ role: 'readonly' });
  const secret = k.key.split('_')[2];
  const [{ found }] = await stack.db.query(
    `SELECT count(*)::int AS found FROM (
       SELECT row_to_json(a)::text AS t FROM api_keys a UNION ALL SELECT row_to_json(e)::text FROM audit_events e
     ) rows WHERE t LIKE '%' || $1 || '%'`,
    [secret],
  );
  expect(found).toBe(0);
});

test('readonly keys read but cannot write or execute; the missing permission is named', async () => {
  const ro = await newKey({ role: 'readonly' });
  const made = await stack.request('POST', '/v1/tasks', { body: task('for-readonly') });
  expect((await stack.request('GET', `/v1/tasks/${made.body.id}`, { apiKey: ro.key })).status).toBe(200);

  const write = await stack.request('POST', '/v1/tasks', { body: task('ro-attempt'), apiKey: ro.key });
  expect(write.status).toBe(403);
  expect(write.body.error).toMatchObject({ code: 'FORBIDDEN', details: [expect.objectContaining({ permission: 'tasks:write' })] });
  const exec = await stack.request('POST', `/v1/tasks/${made.body.id}/runs`, { apiKey: ro.key });
  expect(exec.status).toBe(403);
  expect(exec.body.error.details[0].permission).toBe('runs:execute');
  const keys = await stack.request('POST', '/v1/api-keys', { body: { name: 'x', role: 'readonly' }, apiKey: ro.key });
  expect(keys.status).toBe(403);
  expect(keys.body.error.details[0].permission).toBe('api-keys:write');
});

test('a custom key has exactly its permissions and cannot mint a stronger key', async () => {
  const custom = await newKey({ role: 'custom', permissions: ['tasks:read', 'api-keys:write'] });
  expect((await stack.request('GET', '/v1/tasks', { apiKey: custom.key })).status).toBe(200);
  expect((await stack.request('GET', '/v1/runs', { apiKey: custom.key })).status).toBe(403);
  const elevate = await stack.request('POST', '/v1/api-keys', { body: { name: 'x', role: 'admin' }, apiKey: custom.key });
  expect(elevate.status).toBe(403);
  expect(elevate.body.error.message).toContain('cannot grant');
  const same = await stack.request('POST', '/v1/api-keys', {
    body: { name: 'x', role: 'custom', permissions: ['tasks:read'] },
    apiKey: custom.key,
  });
  expect(same.status).toBe(201);
});

test.each([
  ['custom without permissions', { role: 'custom' }, 400],
  ['permissions with a built-in role', { role: 'readonly', permissions: ['tasks:read'] }, 400],
  ['unknown permission', { role: 'custom', permissions: ['tasks:delete-everything'] }, 400],
  ['unknown role', { role: 'root' }, 400],
  ['expiry in the past', { role: 'readonly', expiresAt: '2020-01-01T00:00:00Z' }, 400],
  ['platform admin flag in the body', { role: 'readonly', platformAdmin: true }, 400],
])('creating a key with %s is refused and writes nothing', async (_name, body, status) => {
  // Other suites add keys concurrently; a refused key would carry this suite's name.
  const name = `bad-${Math.random().toString(36).slice(2)}`;
  const res = await stack.request('POST', '/v1/api-keys', { body: { name, ...body } });
  expect(res.status).toBe(status);
  const [{ n: after }] = await stack.db.query('SELECT count(*)::int AS n FROM api_keys WHERE name = $1', [name]);
  const before = 0;
  expect(after).toBe(before);
});

test("a tenant admin cannot create a key for another tenant, nor see or revoke another tenant's keys", async () => {
  const other = await stack.createTenant(`acl-${Date.now()}`);
  const [{ id: defaultTenant }] = await stack.db.query(`SELECT id FROM tenants WHERE slug = 'default'`);
  const cross = await stack.request('POST', '/v1/api-keys', {
    body: { name: 'x', role: 'admin', tenantId: defaultTenant },
    apiKey: other.apiKey,
  });
  expect(cross.status).toBe(403);

  const mine = await newKey({ role: 'readonly' });
  const theirList = await stack.request('GET', '/v1/api-keys?limit=200', { apiKey: other.apiKey });
  expect(theirList.body.items.map((k: { id: string }) => k.id)).not.toContain(mine.id);
  const revoke = await stack.request('DELETE', `/v1/api-keys/${mine.id}`, { apiKey: other.apiKey });
  expect(revoke.status).toBe(404);
  expect(revoke.body.error.code).toBe('API_KEY_NOT_FOUND');
  expect((await stack.request('GET', '/v1/tasks', { apiKey: mine.key })).status).toBe(200);
});

test('every mutating request leaves exactly one audit event, readable by the tenant admin only', async () => {
  const created = await stack.request('POST', '/v1/tasks', { body: task('audited') });
  const triggered = await stack.request('POST', `/v1/tasks/${created.body.id}/runs`);
  const key = await stack.request('POST', '/v1/api-keys', { body: { name: 'audited', role: 'readonly' } });
  const revoked = await stack.request('DELETE', `/v1/api-keys/${key.body.id}`);
  const expected: [typeof created, string, string][] = [
    [created, 'task.create', created.body.id],
    [triggered, 'run.trigger', triggered.body.id],
    [key, 'api_key.create', key.body.id],
    [revoked, 'api_key.revoke', key.body.id],
  ];
  for (const [res, action, targetId] of expected) {
    const requestId = res.headers.get('x-request-id');
    expect(requestId).toBeTruthy();
    const rows = await stack.db.query('SELECT action, target_id, outcome FROM audit_events WHERE request_id = $1', [requestId]);
    expect(rows).toEqual([{ action, target_id: targetId, outcome: 'success' }]);
  }

  const listed = await stack.request('GET', '/v1/audit-events?action=api_key.revoke&limit=200');
  expect(listed.status).toBe(200);
  expect(listed.body.items.map((e: { targetId: string }) => e.targetId)).toContain(key.body.id);
  const ro = await newKey({ role: 'readonly' });
  expect((await stack.request('GET', '/v1/audit-events', { apiKey: ro.key })).status).toBe(403);
  const other = await stack.createTenant(`audit-${Date.now()}`);
  const theirs = await stack.request('GET', '/v1/audit-events?limit=200', { apiKey: other.apiKey });
  expect(theirs.body.items).toEqual([]);
});

test('responses carry security headers and echo a sane request id', async () => {
  const res = await stack.request('GET', '/v1/tasks', { headers: { 'x-request-id': 'trace-abc.123' } });
  expect(res.headers.get('x-request-id')).toBe('trace-abc.123');
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  expect(res.headers.get('x-powered-by')).toBeNull();
  const odd = await stack.request('GET', '/v1/tasks', { headers: { 'x-request-id': 'has spaces <script>' } });
  expect(odd.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
});

test('a refused mutation and a failed authentication each leave exactly one failure audit event', async () => {
  const refused = await stack.request('POST', '/v1/tasks', { body: { name: 'bad name!', executor: 'shell', shell: { command: 'true' } } });
  expect(refused.status).toBe(400);
  expect(
    await stack.db.query('SELECT action, outcome, details FROM audit_events WHERE request_id = $1', [refused.headers.get('x-request-id')]),
  ).toEqual([{ action: 'request.failed', outcome: 'failure', details: { code: 'VALIDATION_FAILED' } }]);
  const prefix = stack.apiKey.split('_').slice(0, 2).join('_');
  const badKey = await stack.request('DELETE', '/v1/api-keys/00000000-0000-4000-8000-000000000000', {
    apiKey: `${prefix}_${'Z'.repeat(40)}`,
  });
  expect(badKey.status).toBe(401);
  const rows = await stack.db.query('SELECT action, outcome, details, target_id FROM audit_events WHERE request_id = $1', [
    badKey.headers.get('x-request-id'),
  ]);
  expect(rows).toEqual([
    {
      action: 'auth.failure',
      outcome: 'failure',
      details: { reason: 'wrong API key secret', prefix },
      target_id: 'DELETE /v1/api-keys/00000000-0000-4000-8000-000000000000',
    },
  ]);
});
