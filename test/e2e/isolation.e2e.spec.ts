/* Tenant isolation, generated from the OpenAPI document: every route that takes an id is called with
 * tenant B's key on tenant A's object. Each must answer 404 exactly like a missing object and leave the
 * database unchanged; every list route must hide A's rows from B. New routes are covered automatically. */
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';
import { eventually } from '../support/eventually';

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack('isolation');
});
afterAll(async () => stack?.stop());

const TABLES = [
  'tenants',
  'api_keys',
  'tasks',
  'runs',
  'run_attempts',
  'audit_events',
  'schedules',
  'calendars',
  'schedule_events',
  'pipelines',
  'pipeline_versions',
  'pipeline_runs',
  'pipeline_run_steps',
];

/**
 * A digest of every row of tenants A and B (other suites write to the same database concurrently).
 * B's refused mutations are audited in B's own log: the one write the checks may cause.
 */
async function snapshot([a, b]: [string, string]): Promise<string> {
  const parts: string[] = [];
  for (const t of TABLES) {
    const column = t === 'tenants' ? 'id' : 'tenant_id';
    const refusals = t === 'audit_events' ? ` AND NOT (action = 'request.failed' AND tenant_id = $2)` : '';
    const rows = await stack.db.query(
      `SELECT count(*)::int AS n, md5(coalesce(string_agg(row_to_json(x)::text, '|' ORDER BY row_to_json(x)::text), '')) AS h
         FROM ${t} x WHERE ${column} IN ($1, $2)${refusals}`,
      [a, b],
    );
    expect(rows[0].n).toBeGreaterThan(0);
    parts.push(`${t}:${rows[0].n}:${rows[0].h}`);
  }
  return parts.join(',');
}

interface Operation {
  method: string;
  path: string;
  tags: string[];
}

test('every id route and every list route keeps tenant A invisible to tenant B', async () => {
  // Tenant A with one of everything; tenant B with an admin key.
  const a = await stack.createTenant(`iso-a-${Date.now()}`);
  const b = await stack.createTenant(`iso-b-${Date.now()}`);
  const task = await stack.request('POST', '/v1/tasks', {
    body: { name: 'a-task', executor: 'shell', shell: { command: 'true' } },
    apiKey: a.apiKey,
  });
  const run = await stack.request('POST', `/v1/tasks/${task.body.id}/runs`, { apiKey: a.apiKey });
  const key = await stack.request('POST', '/v1/api-keys', { body: { name: 'a-key', role: 'readonly' }, apiKey: a.apiKey });
  const calendar = await stack.request('POST', '/v1/calendars', {
    body: { name: 'a-calendar', holidays: ['2030-01-01'] },
    apiKey: a.apiKey,
  });
  const schedule = await stack.request('POST', '/v1/schedules', {
    body: { name: 'a-schedule', taskId: task.body.id, spec: { cron: ['0 3 * * *'], excludeCalendarIds: [calendar.body.id] }, paused: true },
    apiKey: a.apiKey,
  });
  expect([calendar.status, schedule.status]).toEqual([201, 201]);
  const hook = await stack.request('PUT', '/v1/alert-settings', {
    body: { webhookUrl: 'https://a-private-hook.example/x' },
    apiKey: a.apiKey,
  });
  expect(hook.status).toBe(200);
  const channel = await stack.request('POST', '/v1/alert-channels', {
    body: { name: 'a-channel', type: 'webhook', url: 'https://a-private-hook.example/rules' },
    apiKey: a.apiKey,
  });
  const rule = await stack.request('POST', '/v1/alert-rules', {
    body: { name: 'a-rule', kind: 'consecutive_failures', taskId: task.body.id, failures: 1, channelId: channel.body.id },
    apiKey: a.apiKey,
  });
  expect([channel.status, rule.status]).toEqual([201, 201]);
  // A firing alert of A's (as a failed run would open it).
  const [alert]: { id: string }[] = await stack.db.query(
    `INSERT INTO alerts (tenant_id, rule_id, subject_type, subject_id, state, summary, details, last_notified_at)
     VALUES ($1, $2, 'task', $3, 'firing', 'a-alert', '{}', now()) RETURNING id`,
    [a.tenantId, rule.body.id, task.body.id],
  );
  await stack.waitForRun(run.body.id, undefined, 60_000, a.apiKey);
  const pipeline = await stack.request('POST', '/v1/pipelines', {
    body: { name: 'a-pipeline', steps: [{ key: 'only', task: task.body.id }] },
    apiKey: a.apiKey,
  });
  expect(pipeline.status).toBe(201);
  const pipelineRun = await stack.request('POST', `/v1/pipelines/${pipeline.body.id}/runs`, { body: {}, apiKey: a.apiKey });
  expect(pipelineRun.status).toBe(202);
  const finished = await eventually(
    async () => (await stack.request('GET', `/v1/pipeline-runs/${pipelineRun.body.id}`, { apiKey: a.apiKey })).body,
    (r) => r.status === 'succeeded' || r.status === 'failed',
    60_000,
  );
  expect(finished.status).toBe('succeeded');
  const idsByResource: Record<string, string> = {
    tasks: task.body.id,
    runs: run.body.id,
    'dead-letters': run.body.id,
    schedules: schedule.body.id,
    calendars: calendar.body.id,
    'api-keys': key.body.id,
    pipelines: pipeline.body.id,
    'pipeline-runs': pipelineRun.body.id,
    'alert-channels': channel.body.id,
    'alert-rules': rule.body.id,
    alerts: alert.id,
  };
  const allIdsOfA = Object.values(idsByResource);
  const validBodies: Record<string, unknown> = {
    '/v1/schedules/{id}/backfill': { start: '2026-01-01T00:00:00Z', end: '2026-01-01T01:00:00Z' },
  };

  const doc = (await stack.request('GET', '/docs-json', { apiKey: null })).body;
  const operations: Operation[] = Object.entries(doc.paths as Record<string, Record<string, { tags?: string[] }>>).flatMap(
    ([path, methods]) => Object.entries(methods).map(([method, op]) => ({ method: method.toUpperCase(), path, tags: op.tags ?? [] })),
  );

  await stack.request('GET', '/v1/tasks', { apiKey: b.apiKey }); // B's last-used time is written now, not during the checks
  const before = await snapshot([a.tenantId, b.tenantId]);
  const checked: string[] = [];
  for (const op of operations.filter((o) => o.path.includes('{id}'))) {
    // Tenant routes belong to the platform admin; B is refused by permission (403) before any lookup.
    if (op.tags.includes('tenants')) continue;
    const resource = op.path.split('/')[2];
    const id = idsByResource[resource];
    if (!id) throw new Error(`no object of tenant A for ${op.method} ${op.path}: add one to this test`);
    // A body that passes validation, so the lookup (not the body check) answers.
    const body = ['POST', 'PATCH', 'PUT'].includes(op.method) ? (validBodies[op.path] ?? {}) : undefined;
    const res = await stack.request(op.method, op.path.replace('{id}', id), { apiKey: b.apiKey, body });
    const missing = await stack.request(op.method, op.path.replace('{id}', '00000000-0000-4000-8000-000000000000'), {
      apiKey: b.apiKey,
      body,
    });
    expect([op.method, op.path, res.status]).toEqual([op.method, op.path, 404]);
    expect({ ...res.body.error, message: undefined, requestId: undefined }).toEqual({
      ...missing.body.error,
      message: undefined,
      requestId: undefined,
    });
    expect(JSON.stringify(res.body)).not.toContain('a-task');
    checked.push(`${op.method} ${op.path}`);
  }
  expect(await snapshot([a.tenantId, b.tenantId])).toBe(before);
  expect(checked.length).toBeGreaterThanOrEqual(4);

  const lists = operations.filter(
    (o) => o.method === 'GET' && o.path.startsWith('/v1/') && !o.path.includes('{') && !o.tags.includes('tenants'),
  );
  expect(lists.map((o) => o.path)).toEqual(expect.arrayContaining(['/v1/tasks', '/v1/runs', '/v1/api-keys', '/v1/audit-events']));
  for (const op of lists) {
    const res = await stack.request('GET', `${op.path}?limit=200`, { apiKey: b.apiKey });
    expect([op.path, res.status]).toEqual([op.path, 200]);
    // B's audit log records the paths B itself requested (with A's ids in them); those echo B's input, nothing of A's.
    // Routes that are not pages (alert settings, workers) are checked whole.
    const items = Array.isArray(res.body.items)
      ? (res.body.items as Record<string, unknown>[]).map((i) => (i.action === 'request.failed' ? { ...i, targetId: undefined } : i))
      : res.body;
    const text = JSON.stringify(items);
    for (const id of [...allIdsOfA, a.tenantId, 'a-private-hook']) expect(text).not.toContain(id);
  }
});
