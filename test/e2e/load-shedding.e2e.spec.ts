/* The API's in-flight bound (API_MAX_IN_FLIGHT, common/load-shedding.ts) against the real stack: requests held
 * inside the API by a row lock in PostgreSQL fill the bound, and the next request is refused at once with
 * 503 OVERLOADED and Retry-After, while probes and metrics still answer; slow senders and followed output
 * streams do not hold a slot; the slots come back when the held requests finish. */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { QueryRunner } from 'typeorm';
import { eventually } from '../support/eventually';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';

const BOUND = 2;
let stack: TestStack;
let tenant: { tenantId: string; apiKey: string };

beforeAll(async () => {
  stack = await startStack('shed', { env: { API_MAX_IN_FLIGHT: String(BOUND) } });
  tenant = await stack.createTenant(`shed-${randomBytes(3).toString('hex')}`, { rateLimitPerMinute: 100_000 });
}, 120_000);
afterAll(async () => stack?.stop());

const get = (path: string, apiKey: string | null = tenant.apiKey) =>
  fetch(`${stack.baseUrl}${path}`, { headers: apiKey ? { 'x-api-key': apiKey } : {}, signal: AbortSignal.timeout(30_000) });

/**
 * Holds the tenant's rate-limit row FOR UPDATE: every authenticated request of the tenant then waits inside the
 * API (in the guard's upsert) until `release`. Resolves once `n` requests wait on the lock.
 */
async function holdTenantRequests(): Promise<{ waiting(n: number): Promise<void>; release(): Promise<void> }> {
  // The row exists once the tenant has made a request in this window.
  expect((await get('/v1/me')).status).toBe(200);
  const qr: QueryRunner = stack.db.createQueryRunner();
  await qr.connect();
  await qr.startTransaction();
  const locked = await qr.query(`SELECT key FROM rate_limits WHERE key = $1 FOR UPDATE`, [`tenant:${tenant.tenantId}`]);
  expect(locked).toHaveLength(1);
  const [{ pid }] = await qr.query(`SELECT pg_backend_pid() AS pid`);
  return {
    waiting: async (n) => {
      await eventually(
        // Waiters queue behind each other on a row lock: those blocked by this transaction, or by one of them.
        async () =>
          (
            await stack.db.query(
              `WITH RECURSIVE w(pid) AS (
                 SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))
                 UNION SELECT a.pid FROM pg_stat_activity a JOIN w ON w.pid = ANY(pg_blocking_pids(a.pid)))
               SELECT count(*)::int AS n FROM w`,
              [pid],
            )
          )[0].n,
        (count: number) => count === n,
        20_000,
        50,
      );
    },
    release: async () => {
      await qr.commitTransaction();
      await qr.release();
    },
  };
}

async function metric(name: string): Promise<number> {
  const text = await (await get('/metrics', null)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`no ${name} in /metrics`);
  return Number(line.split(' ')[1]);
}

test('past the bound a request is refused at once with 503 OVERLOADED; probes, metrics and later requests are not', async () => {
  const overloadedBefore = await metric('task_scheduler_api_overloaded_total');
  const lock = await holdTenantRequests();
  let held: Promise<Response>[] = [];
  try {
    held = Array.from({ length: BOUND }, () => get('/v1/runs?limit=5'));
    await lock.waiting(BOUND);
    expect(await metric('task_scheduler_api_requests_in_flight')).toBe(BOUND);

    // Another tenant's request, and one without any credential: the bound is the process's, checked before auth.
    for (const apiKey of [stack.apiKey, null]) {
      const refused = await get('/v1/me', apiKey);
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(refused.headers.get('x-request-id')).toBeTruthy();
      const body = (await refused.json()) as { error: Record<string, unknown> };
      expect(body.error).toMatchObject({ code: 'OVERLOADED', requestId: refused.headers.get('x-request-id') });
      expect(body.error.message).toMatch(/working on 2 requests already; nothing was done/);
      expect(body.error.details).toEqual([{ message: 'the API is overloaded', retryAfterSeconds: 1 }]);
    }
    // A refused trigger starts nothing.
    const runsBefore = await stack.db.query(`SELECT count(*)::int AS n FROM runs WHERE tenant_id = $1`, [tenant.tenantId]);
    const post = await fetch(`${stack.baseUrl}/v1/tasks`, {
      method: 'POST',
      headers: { 'x-api-key': stack.apiKey, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'never', executor: 'shell', shell: { command: 'true' } }),
    });
    expect(post.status).toBe(503);
    expect(await stack.db.query(`SELECT count(*)::int AS n FROM tasks WHERE name = 'never'`)).toEqual([{ n: 0 }]);
    expect(await stack.db.query(`SELECT count(*)::int AS n FROM runs WHERE tenant_id = $1`, [tenant.tenantId])).toEqual(runsBefore);

    for (const path of ['/health', '/ready']) expect((await get(path, null)).status).toBe(200);
    expect(await metric('task_scheduler_api_overloaded_total')).toBe(overloadedBefore + 3);
  } finally {
    await lock.release();
  }
  // The held requests were not refused: they finish once the lock is gone, and their slots come back.
  for (const res of await Promise.all(held)) expect(res.status).toBe(200);
  await eventually(
    () => metric('task_scheduler_api_requests_in_flight'),
    (n) => n === 0,
    10_000,
    50,
  );
  expect((await get('/v1/me')).status).toBe(200);
}, 90_000);

test('a client that sends its body slowly holds no slot', async () => {
  const { port } = new URL(stack.baseUrl);
  const sockets: Socket[] = [];
  try {
    // BOUND + 1 requests whose bodies never end: each is parsed up to the body and waits there.
    for (let i = 0; i <= BOUND; i++) {
      const socket = connect(Number(port), '127.0.0.1');
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write(
        `POST /v1/tasks HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: ${tenant.apiKey}\r\ncontent-type: application/json\r\n` +
          `transfer-encoding: chunked\r\n\r\n1\r\n{\r\n`,
      );
      sockets.push(socket);
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(await metric('task_scheduler_api_requests_in_flight')).toBe(0);
    expect((await get('/v1/me')).status).toBe(200);
  } finally {
    for (const s of sockets) s.destroy();
  }
});

test('followed output streams give their slot back once they stream', async () => {
  const task = await stack.request('POST', '/v1/tasks', {
    apiKey: tenant.apiKey,
    body: {
      name: `follow-${randomBytes(3).toString('hex')}`,
      executor: 'shell',
      shell: { command: 'sleep', args: ['30'] },
      timeoutSeconds: 120,
    },
  });
  expect(task.status).toBe(201);
  const run = await stack.request('POST', `/v1/tasks/${task.body.id}/runs`, { apiKey: tenant.apiKey, body: {} });
  expect(run.status).toBe(202);
  await stack.waitForRun(run.body.id, (r) => r.status === 'running', 30_000, tenant.apiKey);
  const streams = Array.from({ length: BOUND + 1 }, () => new AbortController());
  try {
    for (const c of streams) {
      const res = await fetch(`${stack.baseUrl}/v1/runs/${run.body.id}/logs?follow=true`, {
        headers: { 'x-api-key': tenant.apiKey },
        signal: c.signal,
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    }
    expect(await metric('task_scheduler_api_requests_in_flight')).toBe(0);
    expect((await get('/v1/me')).status).toBe(200);
  } finally {
    for (const c of streams) c.abort();
    await stack.request('POST', `/v1/runs/${run.body.id}/cancel`, { apiKey: tenant.apiKey });
  }
}, 60_000);
