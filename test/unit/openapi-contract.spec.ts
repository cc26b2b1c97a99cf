/* The OpenAPI document as a contract: what every operation must say, checked on the document the build dumps
 * (built here the same way, without PostgreSQL or Temporal). The examples themselves are executed against a
 * real stack in test/e2e/openapi-examples.e2e.spec.ts; Redocly lints the rest (npm run lint). */
import type { OpenAPIObject } from '@nestjs/swagger';
import { ErrorCode, httpStatusOf } from '../../apps/api/src/common/api-error';
import { operationsOf } from '../../apps/api/src/common/openapi';
import { IS_NULLABLE } from '../../apps/api/src/common/validation';
import { createOpenApiDocument } from '../../apps/api/src/openapi-document';
import { getMetadataStorage } from 'class-validator';

type Json = Record<string, any>;

let document: OpenAPIObject;
let operations: { path: string; method: string; op: Json }[];
const ERROR_REF = '#/components/schemas/Error';

/** Follows one local $ref. */
function deref(node: Json): Json {
  if (!node?.$ref) return node;
  const [, , kind, name] = (node.$ref as string).split('/');
  return (document.components as Json)[kind][name];
}

beforeAll(async () => {
  document = await createOpenApiDocument();
  operations = operationsOf(document);
});

const label = (o: { method: string; path: string }) => `${o.method.toUpperCase()} ${o.path}`;

test('the document has operations, a relative server and both credentials', () => {
  expect(operations.length).toBeGreaterThan(40);
  expect(document.servers).toEqual([expect.objectContaining({ url: '/' })]);
  expect(Object.keys(document.components?.securitySchemes ?? {}).sort()).toEqual(['api-key', 'bearer']);
});

test('every operation has a readable, unique operationId', () => {
  const ids = operations.map((o) => o.op.operationId);
  const bad = operations.filter((o) => !/^[a-z][A-Za-z]+$/.test(o.op.operationId ?? '')).map(label);
  expect(bad).toEqual([]);
  const duplicates = ids.filter((id, i) => ids.indexOf(id) !== i);
  expect(duplicates).toEqual([]);
});

test('the Error schema lists every ErrorCode and details is an array of ErrorDetail', () => {
  const error = deref({ $ref: ERROR_REF });
  expect(error.required).toEqual(['error']);
  const inner = error.properties.error;
  expect([...inner.properties.code.enum].sort()).toEqual(Object.values(ErrorCode).sort());
  expect(inner.required).toEqual(['code', 'message']);
  expect(inner.properties.details.type).toBe('array');
  const detail = deref(inner.properties.details.items);
  expect(detail.required).toEqual(['message']);
  expect(Object.keys(detail.properties).sort()).toEqual(['field', 'message']);
});

test('every operation documents its errors with the Error schema and the statuses its shape implies', () => {
  const problems: string[] = [];
  for (const o of operations) {
    const { op, path } = o;
    const statuses = Object.keys(op.responses);
    const errors = statuses.filter((s) => Number(s) >= 400);
    if (!errors.length) problems.push(`${label(o)}: no error response`);
    for (const s of errors) {
      // The readiness probe's 503 is its report (which dependency is down), not an error of the API.
      if (op.operationId === 'getReadiness' && s === '503') continue;
      if (op.responses[s].content?.['application/json']?.schema?.$ref !== ERROR_REF) problems.push(`${label(o)} ${s}: not Error`);
    }
    const isPublic = Array.isArray(op.security) && op.security.length === 0;
    const expected = ['500'];
    if (!isPublic) expected.push('401', '403', '429');
    if (path.includes('{id}')) expected.push('404');
    if (op.requestBody) expected.push('400', '413', '415');
    if ((op.parameters ?? []).some((p: Json) => p.in === 'query')) expected.push('400');
    for (const s of expected) if (!statuses.includes(s)) problems.push(`${label(o)}: no ${s}`);
    // Each documented error status is the status of a code it names (or the generic 404 of an unknown id).
    for (const s of errors) {
      const named = /Codes: ([A-Z_, ]+)\./.exec(String(op.responses[s].description))?.[1].split(', ') ?? [];
      for (const code of named) {
        if (!(code in ErrorCode)) problems.push(`${label(o)} ${s}: unknown code ${code}`);
        else if (String(httpStatusOf(code as ErrorCode)) !== s)
          problems.push(`${label(o)} ${s}: ${code} is ${httpStatusOf(code as ErrorCode)}`);
      }
      if (!named.length && s !== '404' && op.operationId !== 'getReadiness') problems.push(`${label(o)} ${s}: names no code`);
      if (/^undefined/.test(String(op.responses[s].description))) problems.push(`${label(o)} ${s}: no description of the status`);
    }
  }
  expect(problems).toEqual([]);
});

test('every response names x-request-id; 201 gives Location, 429 Retry-After, run starts Location', () => {
  const problems: string[] = [];
  for (const o of operations) {
    for (const [status, response] of Object.entries(o.op.responses) as [string, Json][]) {
      const headers = Object.keys(response.headers ?? {});
      if (!headers.includes('x-request-id')) problems.push(`${label(o)} ${status}: no x-request-id`);
      if (status === '201' && !headers.includes('Location')) problems.push(`${label(o)} 201: no Location`);
      if (status === '429' && !headers.includes('Retry-After')) problems.push(`${label(o)} 429: no Retry-After`);
    }
  }
  const trigger = operations.find((o) => o.op.operationId === 'triggerTaskRun')!.op.responses['202'] as Json;
  expect(Object.keys(trigger.headers).sort()).toEqual(['Idempotent-Replayed', 'Location', 'x-request-id']);
  expect(problems).toEqual([]);
});

test('task reads and writes give an ETag; task writes take If-Match', () => {
  const byId = (id: string) => operations.find((o) => o.op.operationId === id)?.op;
  for (const id of ['getTask', 'updateTask', 'disableTask', 'enableTask']) {
    const op = byId(id);
    if (!op) continue; // routes still being added land here as they appear
    const success = Object.entries(op.responses).find(([s]) => s.startsWith('2'))![1] as Json;
    expect({ id, headers: Object.keys(success.headers) }).toEqual({ id, headers: expect.arrayContaining(['ETag']) });
  }
  for (const id of ['updateTask', 'disableTask', 'enableTask', 'deleteTask']) {
    const op = byId(id);
    if (!op) continue;
    expect({ id, ifMatch: (op.parameters ?? []).some((p: Json) => p.name === 'If-Match' && p.in === 'header') }).toEqual({
      id,
      ifMatch: true,
    });
    expect({ id, has412: '412' in op.responses }).toEqual({ id, has412: true });
  }
});

test('every operation with a body has request examples', () => {
  const missing = operations.filter((o) => o.op.requestBody && !o.op.requestBody.content?.['application/json']?.examples).map(label);
  expect(missing).toEqual([]);
});

test('numbers are integers unless marked double; no object is left without a shape', () => {
  const problems: string[] = [];
  const walk = (node: unknown, at: string): void => {
    if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${at}/${i}`));
    if (!node || typeof node !== 'object') return;
    const s = node as Json;
    if (!at.includes('/examples/') && !at.endsWith('/example')) {
      if (s.type === 'number' && s.format !== 'double') problems.push(`${at}: number without format double`);
      if (s.type === 'object' && !s.properties && s.additionalProperties === undefined && !s.allOf && !s.oneOf) {
        problems.push(`${at}: object without properties`);
      }
    }
    for (const [k, v] of Object.entries(s)) walk(v, `${at}/${k}`);
  };
  walk(document, '#');
  expect(problems).toEqual([]);
});

test('a task body is a discriminated oneOf of a shell and an HTTP task, with typed specs', () => {
  const create = deref({ $ref: '#/components/schemas/CreateTaskDto' });
  expect(create.discriminator.propertyName).toBe('executor');
  const variants = (create.oneOf as Json[]).map(deref);
  expect(variants.map((v) => v.properties.executor.enum)).toEqual([['shell'], ['http']]);
  expect(variants[0].required).toEqual(expect.arrayContaining(['executor', 'shell', 'name']));
  expect(variants[0].properties.http).toBeUndefined();
  expect(variants[1].required).toEqual(expect.arrayContaining(['executor', 'http', 'name']));
  expect(variants[1].properties.shell).toBeUndefined();

  const shell = deref({ $ref: '#/components/schemas/ShellSpecDto' });
  const [command, script] = (shell.oneOf as Json[]).map(deref);
  expect(command.required).toEqual(['command']);
  expect(command.properties.script).toBeUndefined();
  expect(script.required).toEqual(['script']);
  expect(script.properties.command).toBeUndefined();
  expect(script.properties.args).toBeUndefined();

  const http = deref({ $ref: '#/components/schemas/HttpSpecDto' });
  expect(http.properties.body.type).toBeUndefined();
  expect((http.properties.body.oneOf as Json[]).map((s) => s.type)).toEqual(['string', 'object', 'array', 'number', 'boolean']);
  expect(http.properties.expectedStatus.items).toEqual(expect.objectContaining({ type: 'integer', minimum: 100, maximum: 599 }));
});

test('bounds and formats follow the validators', () => {
  const schema = (name: string) => deref({ $ref: `#/components/schemas/${name}` });
  expect(schema('RetryDto').properties.maximumAttempts).toEqual(expect.objectContaining({ type: 'integer', minimum: 1, maximum: 100 }));
  expect(schema('RetryDto').properties.backoffCoefficient).toEqual(expect.objectContaining({ type: 'number', format: 'double' }));
  expect(schema('CreateScheduleDto').properties.taskId).toEqual(expect.objectContaining({ type: 'string', format: 'uuid' }));
  expect(schema('TaskResponse').properties.createdAt).toEqual(expect.objectContaining({ format: 'date-time' }));
  const listRuns = operations.find((o) => o.op.operationId === 'listRuns')!.op;
  const limit = listRuns.parameters.find((p: Json) => p.name === 'limit')!;
  expect(limit.schema).toEqual(expect.objectContaining({ type: 'integer', minimum: 1, maximum: 200 }));
  const param = (name: string) => listRuns.parameters.find((p: Json) => p.name === name).schema;
  expect(param('cursor')).toEqual(expect.objectContaining({ type: 'string', maxLength: 512 }));
  expect(param('taskId')).toEqual(expect.objectContaining({ type: 'string', format: 'uuid' }));
  expect(param('from')).toEqual(expect.objectContaining({ type: 'string', format: 'date-time' }));
});

test('every operation says who may call it, and every tag is described', () => {
  const silent = operations.filter((o) => !/permission|credential|token/i.test(String(o.op.description ?? ''))).map(label);
  expect(silent).toEqual([]);
  const defined = new Map((document.tags ?? []).map((t) => [t.name, t.description]));
  const used = [...new Set(operations.flatMap((o) => (o.op.tags as string[]) ?? []))];
  expect(used.filter((t) => !defined.get(t) || defined.get(t) === t)).toEqual([]);
  const createTask = operations.find((o) => o.op.operationId === 'createTask')!.op;
  expect(createTask.description).toContain('`tasks:write`');
});

test('nullability and the metadata bound come from the validation decorators', () => {
  const schemas = document.components!.schemas as Record<string, Json>;
  // Every @Nullable() property is nullable in the document (derived, not mirrored by hand)…
  const storage = getMetadataStorage() as unknown as { validationMetadatas: Map<unknown, { name?: string; propertyName: string }[]> };
  const nullable = [...storage.validationMetadatas.entries()].flatMap(([target, rules]) =>
    typeof target === 'function' ? rules.filter((r) => r.name === IS_NULLABLE).map((r) => [target.name, r.propertyName] as const) : [],
  );
  expect(nullable.length).toBeGreaterThanOrEqual(3);
  const documented = nullable.filter(([cls]) => schemas[cls]);
  expect(documented.map(([cls, prop]) => [cls, prop, schemas[cls].properties?.[prop]?.nullable])).toEqual(
    documented.map(([cls, prop]) => [cls, prop, true]),
  );
  // …and no other property of a validated (request) class is: that would promise null where validation refuses it.
  const validated = new Set([...storage.validationMetadatas.keys()].map((t) => (typeof t === 'function' ? t.name : '')));
  const extra = Object.entries(schemas).flatMap(([cls, s]) =>
    Object.entries((s.properties ?? {}) as Record<string, Json>)
      .filter(([prop, p]) => p.nullable && validated.has(cls) && !nullable.some(([c, n]) => c === cls && n === prop))
      .map(([prop]) => `${cls}.${prop}`),
  );
  expect(extra).toEqual([]);
  const metadata = JSON.stringify(schemas).match(/A JSON object at most 8 levels deep[^"]*16384 bytes/);
  expect(metadata).not.toBeNull();
});
