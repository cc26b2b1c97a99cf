/* A client generated from the OpenAPI document (openapi-typescript types, openapi-fetch at run time) drives a
 * real flow against the real stack. The types are checked by `npm run lint`; at run time every response is
 * validated against the document's schema for its operation and status (test/support/openapi-contract.ts),
 * so code and contract cannot drift apart without a test failing. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ContractValidator, typedClient } from '../support/openapi-contract';
import type { OpenApiDocument } from '../support/openapi-contract';
import type { components } from '../generated/openapi';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';

type Run = components['schemas']['RunResponse'];

const BUILT_DOCUMENT = join(__dirname, '../../apps/api/dist/openapi.json');
let stack: TestStack;
let validator: ContractValidator;
let tenant: { tenantId: string; apiKey: string };

beforeAll(async () => {
  stack = await startStack('typed-client');
  const served = await stack.request('GET', '/docs-json', { apiKey: null });
  expect(served.status).toBe(200);
  validator = new ContractValidator(served.body as OpenApiDocument);
  tenant = await stack.createTenant(`typed-${Date.now()}`);
}, 120_000);
afterAll(async () => stack?.stop());

test('the document the build dumped (the one the client types are generated from) is the one this code serves', () => {
  // This compares documents only: that the types match dist/openapi.json is the build's doing (it generates
  // them from that file), and that the tests compile against them is `npm run lint`'s. A stale build would
  // check the tests against another contract than the one under test.
  const built = JSON.parse(readFileSync(BUILT_DOCUMENT, 'utf8')) as OpenApiDocument;
  expect({ paths: built.paths, components: built.components }).toEqual({
    paths: validator.document.paths,
    components: validator.document.components,
  });
});

test('create a shell task, run it, read the run with its attempts, list runs and /v1/me: every answer as documented', async () => {
  const { client, checked } = typedClient(stack.baseUrl, validator, { 'x-api-key': tenant.apiKey });

  const created = await client.POST('/v1/tasks', {
    body: { name: 'typed-hello', executor: 'shell', shell: { command: 'echo', args: ['hello typed'] }, timeoutSeconds: 60 },
  });
  expect(created.response.status).toBe(201);
  if (!created.data) throw new Error(`create failed: ${JSON.stringify(created.error)}`);
  const task = created.data;
  expect(task.executor).toBe('shell');
  expect(created.response.headers.get('location')).toBe(`/v1/tasks/${task.id}`);

  const started = await client.POST('/v1/tasks/{id}/runs', { params: { path: { id: task.id } }, body: {} });
  expect(started.response.status).toBe(202);
  if (!started.data) throw new Error(`trigger failed: ${JSON.stringify(started.error)}`);
  const runId = started.data.id;
  expect(started.data.taskId).toBe(task.id);

  await stack.waitForRun(runId, undefined, 60_000, tenant.apiKey);
  const got = await client.GET('/v1/runs/{id}', { params: { path: { id: runId } } });
  if (!got.data) throw new Error(`get run failed: ${JSON.stringify(got.error)}`);
  const run: Run = got.data;
  expect(run.status).toBe('succeeded');
  expect(run.stdout).toBe('hello typed\n');
  expect(run.attempts?.map((a) => [a.attempt, a.status, a.exitCode])).toEqual([[1, 'succeeded', 0]]);

  const listed = await client.GET('/v1/runs', { params: { query: { taskId: task.id, limit: 10 } } });
  expect(listed.data?.items.map((r) => r.id)).toEqual([runId]);
  expect(listed.data?.nextCursor).toBeNull();

  const me = await client.GET('/v1/me');
  expect(me.data?.tenant.id).toBe(tenant.tenantId);
  expect(me.data?.principal.type).toBe('api_key');
  expect(me.data?.usage.tasks).toBe(1);

  // Every call above went through the validator.
  expect(new Set(checked.map((c) => c.operation))).toEqual(
    new Set(['POST /v1/tasks', 'POST /v1/tasks/{id}/runs', 'GET /v1/runs/{id}', 'GET /v1/runs', 'GET /v1/me']),
  );
});

test('4xx answers match the Error schema of their operation', async () => {
  const { client, checked } = typedClient(stack.baseUrl, validator, { 'x-api-key': tenant.apiKey });

  const missing = await client.GET('/v1/runs/{id}', { params: { path: { id: '00000000-0000-4000-8000-000000000000' } } });
  expect(missing.response.status).toBe(404);
  expect(missing.error?.error.code).toBe('RUN_NOT_FOUND');

  // A body the types refuse, sent anyway: the server must refuse it too, in the documented format.
  const invalid = await client.POST('/v1/tasks', {
    body: { name: '', executor: 'shell', shell: { command: 'true' }, timeoutSeconds: -1 } as never,
  });
  expect(invalid.response.status).toBe(400);
  expect(invalid.error?.error.code).toBe('VALIDATION_FAILED');
  expect(invalid.error?.error.details?.map((d) => d.field)).toEqual(expect.arrayContaining(['name', 'timeoutSeconds']));

  const { client: anonymous } = typedClient(stack.baseUrl, validator, {});
  const unauthenticated = await anonymous.GET('/v1/me');
  expect(unauthenticated.response.status).toBe(401);
  expect(unauthenticated.error?.error.code).toBe('UNAUTHENTICATED');
  expect(checked.map((c) => c.status)).toEqual([404, 400]);
});

test('the validator refuses a body that drifted from the document', async () => {
  const res = await stack.request('GET', '/v1/me', { apiKey: tenant.apiKey });
  expect(validator.check('/v1/me', 'GET', 200, res.body)).toEqual([]);

  const drifted = [
    { ...res.body, tenant: { ...res.body.tenant, status: 'archived' } },
    { ...res.body, usage: { ...res.body.usage, tasks: '1' } },
    { ...res.body, undocumented: true },
    { ...res.body, principal: { ...res.body.principal, secret: 'x' } },
    (({ role: _role, ...rest }) => rest)(res.body),
  ];
  for (const body of drifted) expect(validator.check('/v1/me', 'GET', 200, body)).not.toEqual([]);
  expect(() => validator.check('/v1/me', 'GET', 418, res.body)).toThrow(/does not list/);
  const longId = new Headers({ 'x-request-id': 'r'.repeat(129) });
  expect(validator.check('/v1/me', 'GET', 200, res.body, longId)).toEqual([
    expect.stringMatching(/^header x-request-id\/ must NOT have more than 128 characters/),
  ]);
});
