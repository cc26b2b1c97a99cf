/* Optional JWT authentication (HS256 configured) against the real API. */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';

const SECRET = randomBytes(32).toString('hex');
let stack: TestStack;
let tenantId: string;

beforeAll(async () => {
  stack = await startStack('jwt', { env: { JWT_HS256_SECRET: SECRET } });
  tenantId = (await stack.createTenant(`jwt-${Date.now()}`)).tenantId;
});
afterAll(async () => stack?.stop());

const key = (secret = SECRET) => new TextEncoder().encode(secret);

function token(
  claims: Record<string, unknown>,
  opts: { alg?: string; secret?: string; exp?: string | number | null } = {},
): Promise<string> {
  const jwt = new SignJWT({ tenant_id: tenantId, role: 'operator', ...claims })
    .setProtectedHeader({ alg: opts.alg ?? 'HS256' })
    .setSubject('ci-bot')
    .setIssuedAt();
  if (opts.exp !== null) jwt.setExpirationTime(opts.exp ?? '5m');
  return jwt.sign(key(opts.secret));
}

const bearer = (t: string) => ({ apiKey: null, headers: { authorization: `Bearer ${t}` } });
const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');

test('a valid HS256 token with tenant and role claims is accepted and scoped to its tenant', async () => {
  const t = await token({});
  const created = await stack.request('POST', '/v1/tasks', {
    ...bearer(t),
    body: { name: 'from-jwt', executor: 'shell', shell: { command: 'true' } },
  });
  expect(created.status).toBe(201);
  const [row] = await stack.db.query('SELECT tenant_id FROM tasks WHERE id = $1', [created.body.id]);
  expect(row.tenant_id).toBe(tenantId);
  const [audit] = await stack.db.query(`SELECT actor_key_id, details FROM audit_events WHERE action = 'task.create' AND target_id = $1`, [
    created.body.id,
  ]);
  expect(audit).toEqual({ actor_key_id: null, details: { actor: 'jwt:ci-bot' } });
});

test('a readonly token cannot write', async () => {
  const res = await stack.request('POST', '/v1/tasks', {
    ...bearer(await token({ role: 'readonly' })),
    body: { name: 'nope', executor: 'shell', shell: { command: 'true' } },
  });
  expect(res.status).toBe(403);
  expect(res.body.error.details[0].permission).toBe('tasks:write');
});

test.each([
  [
    'alg none',
    async () =>
      `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'x', tenant_id: tenantId, role: 'admin', exp: Math.floor(Date.now() / 1000) + 300 })}.`,
  ],
  ['a different algorithm (HS512 with the same secret)', () => token({}, { alg: 'HS512' })],
  ['a bad signature', () => token({}, { secret: 'x'.repeat(64) })],
  ['a past expiry', () => token({}, { exp: Math.floor(Date.now() / 1000) - 10 })],
  ['no expiry', () => token({}, { exp: null })],
  ['no tenant claim', () => token({ tenant_id: undefined })],
  ['an unknown role', () => token({ role: 'root' })],
  ['garbage', async () => 'not.a.jwt'],
])('a token with %s gets 401 and is audited', async (_name, make) => {
  const res = await stack.request('GET', '/v1/tasks', bearer(await make()));
  expect(res.status).toBe(401);
  expect(res.body.error.code).toBe('UNAUTHENTICATED');
  const rows = await stack.db.query(`SELECT action, outcome FROM audit_events WHERE request_id = $1`, [res.headers.get('x-request-id')]);
  expect(rows).toEqual([{ action: 'auth.failure', outcome: 'failure' }]);
});

test('a token for a suspended tenant gets 403; a token for a tenant that does not exist gets 401', async () => {
  const suspended = await stack.createTenant(`jwt-s-${Date.now()}`);
  await stack.db.query(`UPDATE tenants SET status = 'suspended' WHERE id = $1`, [suspended.tenantId]);
  expect((await stack.request('GET', '/v1/tasks', bearer(await token({ tenant_id: suspended.tenantId })))).status).toBe(403);
  expect((await stack.request('GET', '/v1/tasks', bearer(await token({ tenant_id: '00000000-0000-4000-8000-000000000000' })))).status).toBe(
    401,
  );
});

describe('with a JWKS file (RS256)', () => {
  let jwks: TestStack;
  let privateKey: Parameters<SignJWT['sign']>[0];
  beforeAll(async () => {
    const { generateKeyPair, exportJWK } = await import('jose');
    const pair = await generateKeyPair('RS256');
    privateKey = pair.privateKey;
    const file = join(tmpdir(), `jwks-${process.pid}-${Date.now()}.json`);
    writeFileSync(file, JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), alg: 'RS256', kid: 'k1', use: 'sig' }] }));
    jwks = await startStack('jwks', { env: { JWT_JWKS_FILE: file, JWT_ALGORITHMS: 'RS256' } });
  });
  afterAll(async () => jwks?.stop());

  const rs = (claims: Record<string, unknown> = {}) =>
    new SignJWT({ tenant_id: tenantId, role: 'readonly', ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setSubject('svc')
      .setExpirationTime('5m')
      .sign(privateKey);

  test('a token signed by a key in the set is accepted; an HS256 token is not', async () => {
    expect((await jwks.request('GET', '/v1/tasks', bearer(await rs()))).status).toBe(200);
    expect(await jwks.request('GET', '/v1/tasks', bearer(await token({})))).toMatchObject({ status: 401 });
  });
});
