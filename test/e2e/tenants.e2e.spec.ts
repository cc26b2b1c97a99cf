/* Tenant management, suspension, quotas and rate limits against the real API and PostgreSQL. */
import { Client, Connection } from '@temporalio/client';
import { startStack } from '../support/stack';
import type { AppProcess, TestStack } from '../support/stack';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const local = require('../../scripts/lib/local-stack.cjs');

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack('tenants');
});
afterAll(async () => stack?.stop());

const slug = (p: string) => `${p}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e4)}`;

async function tenantWithKey(limits: Record<string, number> = {}): Promise<{ id: string; key: string }> {
  const t = await stack.request('POST', '/v1/tenants', { body: { slug: slug('t'), name: 'T', limits } });
  expect(t.status).toBe(201);
  const k = await stack.request('POST', '/v1/api-keys', { body: { name: 'admin', role: 'admin', tenantId: t.body.id } });
  expect(k.status).toBe(201);
  expect(k.body.tenantId).toBe(t.body.id);
  return { id: t.body.id, key: k.body.key };
}

test('the platform admin creates, lists, reads and updates tenants; nobody else can', async () => {
  const s = slug('acme');
  const created = await stack.request('POST', '/v1/tenants', { body: { slug: s, name: 'Acme', limits: { maxTasks: 5 } } });
  expect(created.status).toBe(201);
  expect(created.body).toMatchObject({
    slug: s,
    name: 'Acme',
    status: 'active',
    limits: { maxTasks: 5, maxConcurrentRuns: 100, requestsPerMinute: 600 },
  });
  expect((await stack.request('POST', '/v1/tenants', { body: { slug: s, name: 'Again' } })).body.error.code).toBe('TENANT_SLUG_TAKEN');
  expect((await stack.request('GET', `/v1/tenants/${created.body.id}`)).body.slug).toBe(s);
  const listed = await stack.request('GET', '/v1/tenants?limit=200');
  expect(listed.body.items.map((t: { id: string }) => t.id)).toContain(created.body.id);
  const patched = await stack.request('PATCH', `/v1/tenants/${created.body.id}`, {
    body: { name: 'Acme Corp', limits: { requestsPerMinute: 50 } },
  });
  expect(patched.body).toMatchObject({ name: 'Acme Corp', limits: { requestsPerMinute: 50, maxTasks: 5 } });

  // A tenant admin (not platform admin) gets 403 on every tenant route.
  const other = await stack.createTenant(slug('plain'));
  for (const [method, path, body] of [
    ['GET', '/v1/tenants', undefined],
    ['POST', '/v1/tenants', { slug: slug('x'), name: 'x' }],
    ['GET', `/v1/tenants/${created.body.id}`, undefined],
    ['PATCH', `/v1/tenants/${other.tenantId}`, { status: 'active' }],
  ] as const) {
    const res = await stack.request(method, path, { body, apiKey: other.apiKey });
    expect(res.status).toBe(403);
    expect(res.body.error.details[0].permission).toBe('tenants:admin');
  }
});

test.each([
  ['bad slug', { slug: 'Not OK', name: 'x' }],
  ['missing name', { slug: 'fine-slug' }],
  ['zero limit', { slug: 'fine-slug2', name: 'x', limits: { maxTasks: 0 } }],
  ['unknown field', { slug: 'fine-slug3', name: 'x', status: 'suspended' }],
])('creating a tenant with %s is a 400 and writes nothing', async (_n, body) => {
  const res = await stack.request('POST', '/v1/tenants', { body });
  expect(res.status).toBe(400);
  // Other suites create tenants concurrently: look for this one by its slug.
  const [{ n }] = await stack.db.query('SELECT count(*)::int AS n FROM tenants WHERE slug = $1', [(body as { slug: string }).slug]);
  expect(n).toBe(0);
});

test('suspending a tenant makes its keys answer 403 TENANT_SUSPENDED at once; resuming restores them', async () => {
  const t = await tenantWithKey();
  expect((await stack.request('GET', '/v1/tasks', { apiKey: t.key })).status).toBe(200);
  expect((await stack.request('PATCH', `/v1/tenants/${t.id}`, { body: { status: 'suspended' } })).status).toBe(200);
  const blocked = await stack.request('GET', '/v1/tasks', { apiKey: t.key });
  expect(blocked.status).toBe(403);
  expect(blocked.body.error.code).toBe('TENANT_SUSPENDED');
  await stack.request('PATCH', `/v1/tenants/${t.id}`, { body: { status: 'active' } });
  expect((await stack.request('GET', '/v1/tasks', { apiKey: t.key })).status).toBe(200);
});

test('the platform admin cannot suspend its own tenant', async () => {
  const [{ id }] = await stack.db.query(`SELECT id FROM tenants WHERE slug = 'default'`);
  const res = await stack.request('PATCH', `/v1/tenants/${id}`, { body: { status: 'suspended' } });
  expect(res.status).toBe(422);
  expect(res.body.error.code).toBe('TENANT_SELF_SUSPEND');
});

test('a tenant over its task quota gets 422 TENANT_QUOTA_EXCEEDED, even under concurrent creates', async () => {
  const t = await tenantWithKey({ maxTasks: 3 });
  const results = await Promise.all(
    Array.from({ length: 6 }, (_, i) =>
      stack.request('POST', '/v1/tasks', { body: { name: `q${i}`, executor: 'shell', shell: { command: 'true' } }, apiKey: t.key }),
    ),
  );
  expect(results.filter((r) => r.status === 201)).toHaveLength(3);
  const refused = results.filter((r) => r.status !== 201);
  expect(refused.map((r) => [r.status, r.body.error.code])).toEqual(Array(3).fill([422, 'TENANT_QUOTA_EXCEEDED']));
  const [{ n }] = await stack.db.query('SELECT count(*)::int AS n FROM tasks WHERE tenant_id = $1', [t.id]);
  expect(n).toBe(3);
});

describe('rate limits across two API processes sharing the database', () => {
  const apis: { app: AppProcess; url: string }[] = [];

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      const port: number = await local.freePort();
      const url = `http://127.0.0.1:${port}`;
      const app = stack.spawnApp('api', { PORT: String(port), HOST: '127.0.0.1', RATE_LIMIT_PER_KEY_PER_MINUTE: '5' });
      apis.push({ app, url });
      await local.waitFor(
        `API process ${i}`,
        () =>
          fetch(`${url}/health`).then(
            (r) => r.ok,
            () => false,
          ),
        30_000,
        app.child,
      );
    }
  });
  afterAll(async () => {
    await Promise.all(apis.map(({ app }) => app.stop()));
  });

  test('request N+1 in the window gets 429 with Retry-After, per key and per tenant, whichever process answers', async () => {
    const t = await tenantWithKey({ requestsPerMinute: 8 });
    const second = await stack.request('POST', '/v1/api-keys', { body: { name: 'second', role: 'readonly', tenantId: t.id } });
    const get = (i: number, key: string) => fetch(`${apis[i % 2].url}/v1/tasks`, { headers: { 'x-api-key': key } });

    // Per key: 5 per minute, alternating between the two processes.
    for (let i = 0; i < 5; i++) expect((await get(i, t.key)).status).toBe(200);
    const keyLimited = await get(5, t.key);
    expect(keyLimited.status).toBe(429);
    expect(Number(keyLimited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await keyLimited.json()) as any).error).toMatchObject({
      code: 'RATE_LIMITED',
      details: [expect.objectContaining({ scope: 'key', limit: 5 })],
    });

    // Per tenant: 8 per minute across all its keys; 5 are used.
    for (let i = 0; i < 3; i++) expect((await get(i, second.body.key)).status).toBe(200);
    const tenantLimited = await get(1, second.body.key);
    expect(tenantLimited.status).toBe(429);
    expect(tenantLimited.headers.get('retry-after')).toBeTruthy();
    expect(((await tenantLimited.json()) as any).error.details).toEqual([expect.objectContaining({ scope: 'tenant', limit: 8 })]);
  });
});

test('tenant changes are audited in the tenant acted upon; the platform admin can read any tenant’s log, others cannot', async () => {
  const t = await stack.request('POST', '/v1/tenants', { body: { slug: slug('aud'), name: 'Audited' } });
  const patched = await stack.request('PATCH', `/v1/tenants/${t.body.id}`, { body: { name: 'Audited 2' } });
  for (const [res, action] of [
    [t, 'tenant.create'],
    [patched, 'tenant.update'],
  ] as const) {
    const rows = await stack.db.query('SELECT action, target_id FROM audit_events WHERE request_id = $1', [
      res.headers.get('x-request-id'),
    ]);
    expect(rows).toEqual([{ action, target_id: t.body.id }]);
  }
  const all = await stack.request('GET', '/v1/audit-events?tenantId=all&action=tenant.update&limit=200');
  expect(all.status).toBe(200);
  expect(all.body.items.map((e: { targetId: string }) => e.targetId)).toContain(t.body.id);
  const other = await stack.createTenant(slug('nosy'));
  const nosy = await stack.request('GET', `/v1/audit-events?tenantId=all`, { apiKey: other.apiKey });
  expect(nosy.status).toBe(403);
});

test("raising a tenant's concurrency limit starts its waiting run at once, by a signal", async () => {
  const t = await tenantWithKey({ maxConcurrentRuns: 1 });
  const task = await stack.request('POST', '/v1/tasks', {
    apiKey: t.key,
    body: { name: 'hold', executor: 'shell', shell: { command: 'sleep', args: ['60'] }, retry: { maximumAttempts: 1 } },
  });
  expect(task.status).toBe(201);
  const trigger = async () => (await stack.request('POST', `/v1/tasks/${task.body.id}/runs`, { apiKey: t.key })).body;
  const first = await trigger();
  await stack.waitForRun(first.id, (r) => r.status === 'running', 60_000, t.key);
  const second = await trigger();
  // Refused the tenant's one slot (its mark is what a wake looks for).
  for (let i = 0; ; i++) {
    const [row] = await stack.db.query(`SELECT slot_refused_at FROM runs WHERE id = $1`, [second.id]);
    if (row?.slot_refused_at) break;
    if (i >= 300) throw new Error('the second run was not refused a slot within 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  expect((await stack.request('PATCH', `/v1/tenants/${t.id}`, { body: { limits: { maxConcurrentRuns: 2 } } })).status).toBe(200);
  const connection = await Connection.connect({ address: stack.config.TEMPORAL_ADDRESS });
  try {
    const client = new Client({ connection });
    // The PATCH signalled it before answering: it does not wait for its periodic re-check (10-60 s).
    const signals = ((await client.workflow.getHandle(second.workflowId).fetchHistory()).events ?? []).filter(
      (e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'runSlotFreed',
    );
    expect(signals).toHaveLength(1);
    await stack.waitForRun(second.id, (r) => r.status === 'running', 60_000, t.key);
    for (const run of [first, second]) await stack.request('POST', `/v1/runs/${run.id}/cancel`, { apiKey: t.key });
    for (const run of [first, second]) await stack.waitForRun(run.id, undefined, 60_000, t.key);
  } finally {
    await connection.close();
  }
}, 180_000);
