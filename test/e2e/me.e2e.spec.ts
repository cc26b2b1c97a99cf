/* GET /v1/me against the real stack: every kind of credential sees its own tenant, credential, permissions,
 * limits and usage, and nothing of another tenant's; the secret of a key never comes back. */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { PERMISSIONS, ROLE_PERMISSIONS } from '../../apps/api/src/auth/permissions';
import { eventually } from '../support/eventually';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';

const SECRET = randomBytes(32).toString('hex');
const ISSUER = 'https://idp.me-e2e.test';
let stack: TestStack;
let a: { tenantId: string; apiKey: string };
let b: { tenantId: string; apiKey: string };

beforeAll(async () => {
  stack = await startStack('me', { env: { JWT_HS256_SECRET: SECRET, JWT_ISSUER: ISSUER } });
  const suffix = randomBytes(3).toString('hex');
  a = await stack.createTenant(`me-a-${suffix}`, { maxTasks: 7, maxConcurrentRuns: 1, rateLimitPerMinute: 5000 });
  b = await stack.createTenant(`me-b-${suffix}`, { maxTasks: 9, maxConcurrentRuns: 3 });
}, 120_000);
afterAll(async () => stack?.stop());

const me = (apiKey: string | null, headers: Record<string, string> = {}) => stack.request('GET', '/v1/me', { apiKey, headers });

async function createKey(admin: string, body: Record<string, unknown>): Promise<{ id: string; key: string; prefix: string }> {
  const res = await stack.request('POST', '/v1/api-keys', {
    apiKey: admin,
    body: { name: `k-${randomBytes(3).toString('hex')}`, ...body },
  });
  expect(res.status).toBe(201);
  return res.body;
}

async function createTask(apiKey: string, command: string, args: string[] = []): Promise<string> {
  const res = await stack.request('POST', '/v1/tasks', {
    apiKey,
    body: { name: `t-${randomBytes(4).toString('hex')}`, executor: 'shell', shell: { command, args }, timeoutSeconds: 120 },
  });
  expect(res.status).toBe(201);
  return res.body.id;
}

test('an admin key sees its tenant, its key without the secret, every permission and the tenant limits', async () => {
  const key = await createKey(a.apiKey, { role: 'admin', expiresAt: '2099-01-01T00:00:00.000Z' });
  const res = await me(key.key);
  expect(res.status).toBe(200);
  const [tenant] = await stack.db.query(`SELECT id, slug, name, status FROM tenants WHERE id = $1`, [a.tenantId]);
  expect(res.body.tenant).toEqual(tenant);
  expect(res.body.principal).toEqual({
    type: 'api_key',
    id: key.id,
    name: expect.any(String),
    prefix: key.prefix,
    expiresAt: '2099-01-01T00:00:00.000Z',
  });
  expect(res.body.role).toBe('admin');
  expect(res.body.platformAdmin).toBe(false);
  expect(res.body.permissions).toEqual([...PERMISSIONS].sort());
  expect(res.body.limits).toEqual({
    maxTasks: 7,
    maxConcurrentRuns: 1,
    requestsPerMinute: 5000,
    requestsPerMinutePerKey: stack.config.RATE_LIMIT_PER_KEY_PER_MINUTE,
    shellPolicy: { allowEgress: true, maxLimits: {} },
  });
  const text = JSON.stringify(res.body);
  expect(text).not.toContain(key.key.slice(key.prefix.length + 1));
  expect(text).not.toMatch(/secret|hash/i);
});

test('a tenant admin reads the shell policy the platform admin set', async () => {
  const patched = await stack.request('PATCH', `/v1/tenants/${b.tenantId}`, {
    body: { shellPolicy: { allowEgress: false, maxLimits: { memoryMb: 256, processes: 32 } } },
  });
  expect(patched.status).toBe(200);
  const res = await me(b.apiKey);
  expect(res.body.limits.shellPolicy).toEqual({ allowEgress: false, maxLimits: { memoryMb: 256, processes: 32 } });
  expect(res.body.limits.maxTasks).toBe(9);
});

test('the platform admin key says so and holds tenants:admin', async () => {
  const res = await me(stack.apiKey);
  expect(res.status).toBe(200);
  expect(res.body.platformAdmin).toBe(true);
  expect(res.body.permissions).toContain('tenants:admin');
  expect(res.body.tenant.slug).toBe('default');
});

test('readonly and operator keys get their role permissions', async () => {
  for (const role of ['readonly', 'operator'] as const) {
    const key = await createKey(a.apiKey, { role });
    const res = await me(key.key);
    expect(res.status).toBe(200);
    expect(res.body.role).toBe(role);
    expect(res.body.permissions).toEqual([...ROLE_PERMISSIONS[role]].sort());
    expect(res.body.tenant.id).toBe(a.tenantId);
  }
});

test('a custom key may call it whatever its permissions, and sees exactly the permissions it holds', async () => {
  await fc.assert(
    fc.asyncProperty(fc.subarray([...PERMISSIONS], { minLength: 1 }), async (permissions) => {
      const key = await createKey(a.apiKey, { role: 'custom', permissions });
      const res = await me(key.key);
      expect(res.status).toBe(200);
      expect(res.body.role).toBe('custom');
      expect(res.body.permissions).toEqual([...permissions].sort());
      // The route needing no permission did not widen what the key may do elsewhere.
      const tasks = await stack.request('GET', '/v1/tasks', { apiKey: key.key });
      expect(tasks.status).toBe(permissions.includes('tasks:read') ? 200 : 403);
    }),
    { numRuns: 15 },
  );
});

test('a JWT sees its subject, issuer and expiry, and its role permissions', async () => {
  const exp = Math.floor(Date.now() / 1000) + 300;
  const token = await new SignJWT({ tenant_id: b.tenantId, role: 'readonly' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('deploy-bot')
    .setIssuer(ISSUER)
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(SECRET));
  const res = await me(null, { authorization: `Bearer ${token}` });
  expect(res.status).toBe(200);
  expect(res.body.principal).toEqual({ type: 'jwt', subject: 'deploy-bot', issuer: ISSUER, expiresAt: new Date(exp * 1000).toISOString() });
  expect(res.body.role).toBe('readonly');
  expect(res.body.permissions).toEqual([...ROLE_PERMISSIONS.readonly].sort());
  expect(res.body.tenant.id).toBe(b.tenantId);
});

test('no credential, a revoked key and a suspended tenant are refused', async () => {
  expect((await me(null)).status).toBe(401);
  const key = await createKey(a.apiKey, { role: 'readonly' });
  expect((await stack.request('DELETE', `/v1/api-keys/${key.id}`, { apiKey: a.apiKey })).status).toBeLessThan(300);
  expect((await me(key.key)).status).toBe(401);

  const c = await stack.createTenant(`me-c-${randomBytes(3).toString('hex')}`);
  await stack.db.query(`UPDATE tenants SET status = 'suspended' WHERE id = $1`, [c.tenantId]);
  const res = await me(c.apiKey);
  expect([res.status, res.body.error.code]).toEqual([403, 'TENANT_SUSPENDED']);
});

test('the rate-limit budget shown is what is left after this request', async () => {
  const c = await stack.createTenant(`me-r-${randomBytes(3).toString('hex')}`, { rateLimitPerMinute: 40 });
  const first = await me(c.apiKey);
  const second = await me(c.apiKey);
  expect(first.body.usage.rateLimit).toEqual({
    tenantRemaining: 39,
    keyRemaining: stack.config.RATE_LIMIT_PER_KEY_PER_MINUTE - 1,
    windowSeconds: 60,
  });
  expect(second.body.usage.rateLimit.tenantRemaining).toBe(38);
  expect(second.body.usage.rateLimit.keyRemaining).toBe(stack.config.RATE_LIMIT_PER_KEY_PER_MINUTE - 2);
});

test('usage counts the tenant’s own tasks, schedules and runs (admitted and waiting), never another tenant’s', async () => {
  const before = (await me(b.apiKey)).body.usage;
  const sleeper = await createTask(a.apiKey, 'sleep', ['60']);
  await createTask(a.apiKey, 'true');
  const schedule = await stack.request('POST', '/v1/schedules', {
    apiKey: a.apiKey,
    body: { name: `s-${randomBytes(3).toString('hex')}`, taskId: sleeper, spec: { cron: ['0 12 * * *'], timezone: 'UTC' }, paused: true },
  });
  expect(schedule.status).toBe(201);

  // maxConcurrentRuns is 1: the first run takes the slot, the second waits for it.
  const runs: string[] = [];
  for (let i = 0; i < 2; i++) {
    const r = await stack.request('POST', `/v1/tasks/${sleeper}/runs`, { apiKey: a.apiKey });
    expect(r.status).toBe(202);
    runs.push(r.body.id);
  }
  const usage = await eventually(
    () => me(a.apiKey).then((r) => r.body.usage),
    (u) => u.runsAdmitted === 1,
    30_000,
  );
  expect(usage).toMatchObject({ tasks: 2, schedules: 1, runsInFlight: 2, runsAdmitted: 1, runsWaiting: 1 });
  const [sql] = await stack.db.query(
    `SELECT count(*) FILTER (WHERE status IN ('queued', 'running'))::int AS in_flight FROM runs WHERE tenant_id = $1`,
    [a.tenantId],
  );
  expect(sql.in_flight).toBe(2);

  // The other tenant's figures did not move.
  expect((await me(b.apiKey)).body.usage).toMatchObject({
    tasks: before.tasks,
    schedules: before.schedules,
    runsInFlight: before.runsInFlight,
    runsAdmitted: before.runsAdmitted,
  });

  for (const id of runs) expect((await stack.request('POST', `/v1/runs/${id}/cancel`, { apiKey: a.apiKey })).status).toBeLessThan(300);
  for (const id of runs) await stack.waitForRun(id, undefined, 60_000, a.apiKey);
  const after = (await me(a.apiKey)).body.usage;
  expect(after).toMatchObject({ tasks: 2, schedules: 1, runsInFlight: 0, runsAdmitted: 0, runsWaiting: 0 });
});
