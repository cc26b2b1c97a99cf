/* Revoking API keys is bounded like creating them: a key may revoke only keys
 * that can do nothing it cannot. Every case runs on its own tenant, so a
 * revocation that wrongly succeeds cannot take down a key other suites use. */
import { apiKeyFromString, generateApiKey } from '@task-scheduler/core';
import { ApiKeyEntity } from '@task-scheduler/db';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack('revoke');
});
afterAll(async () => stack?.stop());

interface Key {
  id: string;
  key: string;
}

interface Tenant {
  tenantId: string;
  admin: Key;
}

async function tenant(): Promise<Tenant> {
  const t = await stack.createTenant(`revoke-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`);
  const [{ id }] = await stack.db.query(`SELECT id FROM api_keys WHERE tenant_id = $1 AND role = 'admin'`, [t.tenantId]);
  return { tenantId: t.tenantId, admin: { id, key: t.apiKey } };
}

async function newKey(apiKey: string, body: Record<string, unknown>): Promise<Key> {
  const res = await stack.request('POST', '/v1/api-keys', { body: { name: 'k', ...body }, apiKey });
  expect(res.status).toBe(201);
  return { id: res.body.id, key: res.body.key };
}

/** The API cannot mint a platform admin key; tenants are given one the way bootstrap does. */
async function platformAdminKey(tenantId: string): Promise<Key> {
  const k = apiKeyFromString(generateApiKey().key);
  const saved = await stack.db.getRepository(ApiKeyEntity).save({
    tenantId,
    name: 'platform admin',
    prefix: k.prefix,
    secretHash: k.secretHash,
    role: 'admin',
    permissions: [],
    platformAdmin: true,
  });
  return { id: saved.id, key: k.key };
}

const revoke = (target: Key, by: Key) => stack.request('DELETE', `/v1/api-keys/${target.id}`, { apiKey: by.key });

async function expectUnrevoked(target: Key): Promise<void> {
  const [{ revoked_at }] = await stack.db.query('SELECT revoked_at FROM api_keys WHERE id = $1', [target.id]);
  expect(revoked_at).toBeNull();
  expect((await stack.request('GET', '/v1/tasks', { apiKey: target.key })).status).toBe(200);
}

async function auditOf(res: { headers: Headers }): Promise<unknown[]> {
  return stack.db.query('SELECT action, outcome, target_id, details FROM audit_events WHERE request_id = $1', [
    res.headers.get('x-request-id'),
  ]);
}

test("a custom key with api-keys:write cannot revoke its tenant's admin key; the refusal is audited and changes nothing", async () => {
  const t = await tenant();
  const keyAdmin = await newKey(t.admin.key, { role: 'custom', permissions: ['api-keys:read', 'api-keys:write'] });

  const listed = await stack.request('GET', '/v1/api-keys?limit=200', { apiKey: keyAdmin.key });
  expect(listed.body.items.map((k: { id: string }) => k.id)).toContain(t.admin.id);

  const res = await revoke(t.admin, keyAdmin);
  expect(res.status).toBe(403);
  expect(res.body.error.code).toBe('FORBIDDEN');
  expect(res.body.error.message).toMatch(/cannot revoke a key with permissions it does not hold: .*tasks:write/);
  const beyond = res.body.error.details.map((d: { permission: string }) => d.permission);
  expect(beyond).toEqual(expect.arrayContaining(['tasks:write', 'runs:execute', 'audit:read']));
  expect(beyond).not.toContain('api-keys:write');
  await expectUnrevoked(t.admin);
  expect(await auditOf(res)).toEqual([
    {
      action: 'request.failed',
      outcome: 'failure',
      target_id: `DELETE /v1/api-keys/${t.admin.id}`,
      details: { code: 'FORBIDDEN' },
    },
  ]);
  const [{ n }] = await stack.db.query(`SELECT count(*)::int AS n FROM audit_events WHERE action = 'api_key.revoke' AND target_id = $1`, [
    t.admin.id,
  ]);
  expect(n).toBe(0);
});

test('the refusal does not depend on whether the target is already revoked', async () => {
  const t = await tenant();
  const operator = await newKey(t.admin.key, { role: 'operator' });
  expect((await revoke(operator, t.admin)).status).toBe(200);
  const keyAdmin = await newKey(t.admin.key, { role: 'custom', permissions: ['api-keys:write'] });
  const res = await revoke(operator, keyAdmin);
  expect(res.status).toBe(403);
  expect(res.body.error.code).toBe('FORBIDDEN');
});

test('an operator key cannot revoke an admin key, with or without api-keys:write', async () => {
  const t = await tenant();
  const operator = await newKey(t.admin.key, { role: 'operator' });
  const plain = await revoke(t.admin, operator);
  expect(plain.status).toBe(403);
  expect(plain.body.error.details).toEqual([{ message: expect.any(String), permission: 'api-keys:write' }]);

  const operatorWithKeys = await newKey(t.admin.key, {
    role: 'custom',
    permissions: ['tasks:read', 'tasks:write', 'runs:read', 'runs:execute', 'api-keys:write'],
  });
  const res = await revoke(t.admin, operatorWithKeys);
  expect(res.status).toBe(403);
  expect(res.body.error.code).toBe('FORBIDDEN');
  await expectUnrevoked(t.admin);
});

test('an admin key revokes an operator key as before', async () => {
  const t = await tenant();
  const operator = await newKey(t.admin.key, { role: 'operator' });
  const res = await revoke(operator, t.admin);
  expect(res.status).toBe(200);
  expect(res.body.revokedAt).not.toBeNull();
  expect((await stack.request('GET', '/v1/tasks', { apiKey: operator.key })).status).toBe(401);
  expect(await auditOf(res)).toEqual([
    { action: 'api_key.revoke', outcome: 'success', target_id: operator.id, details: expect.objectContaining({}) },
  ]);
});

test('a custom key revokes keys whose permissions are a subset of its own, and itself', async () => {
  const t = await tenant();
  const keyAdmin = await newKey(t.admin.key, { role: 'custom', permissions: ['tasks:read', 'runs:read', 'api-keys:write'] });
  const narrower = await newKey(t.admin.key, { role: 'custom', permissions: ['tasks:read'] });
  const readonlyKey = await newKey(t.admin.key, { role: 'custom', permissions: ['tasks:read', 'runs:read'] });
  const peer = await newKey(t.admin.key, { role: 'custom', permissions: ['runs:read', 'api-keys:write', 'tasks:read'] });
  for (const target of [narrower, readonlyKey, peer]) {
    const res = await revoke(target, keyAdmin);
    expect(res.status).toBe(200);
    expect((await stack.request('GET', '/v1/tasks', { apiKey: target.key })).status).toBe(401);
  }

  const wider = await newKey(t.admin.key, { role: 'custom', permissions: ['tasks:read', 'schedules:read'] });
  const refused = await revoke(wider, keyAdmin);
  expect(refused.status).toBe(403);
  expect(refused.body.error.details).toEqual([{ message: expect.any(String), permission: 'schedules:read' }]);
  await expectUnrevoked(wider);

  expect((await revoke(keyAdmin, keyAdmin)).status).toBe(200);
  expect((await stack.request('GET', '/v1/tasks', { apiKey: keyAdmin.key })).status).toBe(401);
});

test('only a platform admin may revoke a platform admin key; a platform admin may revoke any key of its tenant', async () => {
  const t = await tenant();
  const platform = await platformAdminKey(t.tenantId);
  const res = await revoke(platform, t.admin);
  expect(res.status).toBe(403);
  expect(res.body.error).toMatchObject({ code: 'FORBIDDEN', details: [{ message: expect.any(String), permission: 'tenants:admin' }] });
  await expectUnrevoked(platform);

  const other = await platformAdminKey(t.tenantId);
  expect((await revoke(other, platform)).status).toBe(200);
  expect((await revoke(t.admin, platform)).status).toBe(200);
  expect((await stack.request('GET', '/v1/tasks', { apiKey: t.admin.key })).status).toBe(401);
});
