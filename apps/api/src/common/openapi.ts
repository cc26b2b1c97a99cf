import { STATUS_CODES } from 'node:http';
import { applyDecorators } from '@nestjs/common';
import type { INestApplication } from '@nestjs/common';
import { ApiExtension, ApiHeader, DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { OpenAPIObject } from '@nestjs/swagger';
import { getMetadataStorage } from 'class-validator';
import type { ValidationMetadata } from 'class-validator/types/metadata/ValidationMetadata';
import { ErrorCode, httpStatusOf } from './api-error';
import { PROBE_PATHS } from './probe-paths';
import { REQUEST_EXAMPLES } from './openapi-examples';
import { IS_BOUNDED_JSON_OBJECT, IS_NULLABLE } from './validation';

/**
 * The API's OpenAPI document, built from the controllers and DTOs: served at /docs-json and dumped by the build
 * (scripts/openapi-dump.mjs). What decorators cannot say is added here, in one place, so every operation gets it:
 * the `Error` schema and the error responses, the response headers, integer types and the bounds of the
 * validators, and the discriminated executor specs of a task.
 */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Task Scheduler API')
      .setDescription(
        'Tasks, pipelines, schedules, runs and their history. Authenticate with an API key in the x-api-key header or a JWT ' +
          'in `Authorization: Bearer`. Every error has the `Error` shape; conventions are in docs/api.md.',
      )
      .setVersion('0.1.0')
      .setLicense('UNLICENSED', 'https://spdx.org/licenses/')
      .addServer('/', 'The server that serves this document')
      .addApiKey({ type: 'apiKey', in: 'header', name: 'x-api-key' }, 'api-key')
      .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }, 'bearer')
      .build(),
  );
  return finishContract(document);
}

// ---------------------------------------------------------------------------------------------------------------
// Decorators for controllers. They only record facts on the operation; finishContract turns them into OpenAPI.

const ERROR_CODES = 'x-error-codes';
const RESPONSE_HEADERS = 'x-response-headers';
const PUBLIC = 'x-public';
const PERMISSION = 'x-required-permission';

/** Records the permission a route needs, for the operation's description (the auth guard's `@RequirePermission` uses it). */
export function ApiPermission(permission: string): MethodDecorator & ClassDecorator {
  return ApiExtension(PERMISSION, permission);
}

/** Documents operations that need no credentials; applied by the auth guard's `@Public()`, which routes use instead. */
export function ApiPublic(): ClassDecorator & MethodDecorator {
  return ApiExtension(PUBLIC, true);
}

/** The domain error codes an operation can answer with (beyond the ones every operation gets, see docs/api.md). */
export function ApiErrors(...codes: ErrorCode[]): MethodDecorator {
  return ApiExtension(ERROR_CODES, codes) as MethodDecorator;
}

/** Headers of the operation's success response, by name in {@link HEADERS} (Location on a 201 is automatic). */
export function ApiResponseHeaders(...names: (keyof typeof HEADERS)[]): MethodDecorator {
  return ApiExtension(RESPONSE_HEADERS, names) as MethodDecorator;
}

/** An optional `If-Match` header: the write happens only if the resource's current ETag matches (412 otherwise). */
export function ApiIfMatch(): MethodDecorator {
  return applyDecorators(
    ApiHeader({
      name: 'If-Match',
      required: false,
      description:
        'The ETag of the version you read. If the resource changed since, nothing is written and the answer is 412 ' +
        '(TASK_VERSION_MISMATCH, PIPELINE_VERSION_MISMATCH: read it again). Without the header the write is unconditional.',
      schema: { type: 'string', maxLength: 256, example: '"3"' },
    }),
  ) as MethodDecorator;
}

// ---------------------------------------------------------------------------------------------------------------

type Json = Record<string, unknown>;
type Schema = Json & { type?: string; properties?: Record<string, Json>; required?: string[]; items?: Json; format?: string };

const ref = (name: string, kind = 'schemas') => ({ $ref: `#/components/${kind}/${name}` });

const HEADERS = {
  RequestId: {
    name: 'x-request-id',
    description: 'The id of the request, in every response (yours, if you sent a sane one): quote it when reporting a problem.',
    schema: { type: 'string', maxLength: 128, example: 'b1946ac9-2b7c-4c8a-9d1e-6f0a1c2b3d4e' },
  },
  Location: {
    name: 'Location',
    description: 'Path of the resource created (or, for a run started, of the run).',
    schema: { type: 'string', format: 'uri-reference', example: '/v1/tasks/0b0c0a51-7a8f-4c44-9a3c-8c2a7f9e6d10' },
  },
  IdempotentReplayed: {
    name: 'Idempotent-Replayed',
    description: 'Present (`true`) when the Idempotency-Key was seen before: the run in the body is the one started then.',
    schema: { type: 'string', enum: ['true'] },
  },
  RetryAfter: {
    name: 'Retry-After',
    description: 'Seconds to wait before trying again.',
    schema: { type: 'integer', minimum: 1, example: 30 },
  },
  ETag: {
    name: 'ETag',
    description: 'The version of the resource; send it back in If-Match to change exactly this version.',
    schema: { type: 'string', example: '"3"' },
  },
} as const;

/** What a status means for every operation that can give it, and the codes it carries there. */
const STATUS_TEXT: Record<number, string> = {
  400: 'The request is invalid (body, query or header); details names the fields.',
  401: 'No valid API key or token.',
  403: 'The key or token may not do this, or the tenant is suspended.',
  404: 'No such resource in your tenant (another tenant’s looks exactly like a missing one).',
  409: 'Conflicts with the current state.',
  412: 'The If-Match header names a version that is no longer current.',
  413: 'The request body is too large.',
  415: 'The request body is not `application/json` (nor, for a PATCH, `application/merge-patch+json`).',
  431: 'The request headers are too large (over 16 KiB).',
  422: 'Understood, but refused by a rule of the API.',
  429: 'Too many requests for this key or tenant; wait Retry-After seconds.',
  500: 'An unexpected error; nothing was changed by it. Quote the request id.',
  503: 'The API process is overloaded (OVERLOADED: wait Retry-After seconds), or PostgreSQL or Temporal is unavailable; nothing was changed, try again.',
  504: 'Temporal did not answer in time; the outcome is named by the code.',
};

const ALL_CODES = Object.values(ErrorCode);

function errorSchemas(): Record<string, Json> {
  return {
    ErrorDetail: {
      type: 'object',
      description: 'One problem, for example one invalid field. Some codes add properties of their own (named in the message).',
      required: ['message'],
      properties: {
        field: {
          type: 'string',
          description: 'Path of the field in the request, e.g. `shell.limits.memoryMb` or `shell.args[2]`.',
          example: 'name',
        },
        message: { type: 'string', example: 'name must be 1-128 characters' },
      },
      additionalProperties: true,
    },
    Error: {
      type: 'object',
      description: 'The body of every error response.',
      required: ['error'],
      properties: {
        error: {
          type: 'object',
          required: ['code', 'message'],
          properties: {
            code: { type: 'string', enum: ALL_CODES, description: 'Stable and machine-readable; the HTTP status follows from it.' },
            message: { type: 'string', description: 'A sentence for a person; may change between versions.' },
            requestId: { type: 'string', description: 'Same as the x-request-id response header.' },
            details: { type: 'array', items: ref('ErrorDetail'), maxItems: 1000 },
          },
        },
      },
      example: {
        error: {
          code: 'VALIDATION_FAILED',
          message: 'name must be 1-128 characters',
          requestId: 'b1946ac9-2b7c-4c8a-9d1e-6f0a1c2b3d4e',
          details: [{ field: 'name', message: 'name must be 1-128 characters' }],
        },
      },
    },
  };
}

type Operation = Json & {
  operationId?: string;
  parameters?: Json[];
  requestBody?: Json;
  responses: Record<string, Json>;
  security?: Json[];
  [ERROR_CODES]?: ErrorCode[];
  [RESPONSE_HEADERS]?: (keyof typeof HEADERS)[];
  [PUBLIC]?: boolean;
  [PERMISSION]?: string;
};

const METHODS = ['get', 'put', 'post', 'patch', 'delete'] as const;

/** Every operation of the document with its path and method. */
export function operationsOf(document: OpenAPIObject): { path: string; method: string; op: Operation }[] {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    METHODS.filter((m) => (item as Json)[m]).map((method) => ({ path, method, op: (item as Json)[method] as Operation })),
  );
}

/** The codes every operation of this shape can answer with, whatever it does. */
function defaultCodes(path: string, op: Operation): ErrorCode[] {
  // Any request can be refused by Node's HTTP parser before routing (common/input-middleware.ts, answerClientError):
  // a control character in a header (400 MALFORMED_REQUEST) or headers over 16 KiB (431 HEADERS_TOO_LARGE).
  const codes: ErrorCode[] = [ErrorCode.INTERNAL_ERROR, ErrorCode.MALFORMED_REQUEST, ErrorCode.HEADERS_TOO_LARGE];
  // Past the API's in-flight bound every request but the probes' is refused before routing (common/load-shedding.ts).
  if (!PROBE_PATHS.has(path)) codes.push(ErrorCode.OVERLOADED);
  if (!op[PUBLIC]) codes.push(ErrorCode.UNAUTHENTICATED, ErrorCode.FORBIDDEN, ErrorCode.TENANT_SUSPENDED, ErrorCode.RATE_LIMITED);
  const query = (op.parameters ?? []).filter((p) => p.in === 'query' || p.in === 'header');
  if (op.requestBody || query.length) codes.push(ErrorCode.VALIDATION_FAILED);
  if (query.some((p) => p.name === 'cursor')) codes.push(ErrorCode.INVALID_CURSOR);
  if (op.requestBody) codes.push(ErrorCode.MALFORMED_JSON, ErrorCode.PAYLOAD_TOO_LARGE, ErrorCode.UNSUPPORTED_MEDIA_TYPE);
  if (path.includes('{')) codes.push(ErrorCode.ROUTE_NOT_FOUND);
  return codes;
}

function addErrorResponses(path: string, op: Operation): void {
  const codes = [...new Set([...defaultCodes(path, op), ...(op[ERROR_CODES] ?? [])])];
  delete op[ERROR_CODES];
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) byStatus.set(httpStatusOf(code), [...(byStatus.get(httpStatusOf(code)) ?? []), code]);
  for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
    const shown = list.filter((c) => c !== ErrorCode.ROUTE_NOT_FOUND);
    op.responses[String(status)] = {
      description: `${STATUS_TEXT[status] ?? `${STATUS_CODES[status]}.`}${shown.length ? ` Codes: ${shown.join(', ')}.` : ''}`,
      headers: {
        'x-request-id': ref('RequestId', 'headers'),
        ...(status === 429 || status === 503 ? { 'Retry-After': ref('RetryAfter', 'headers') } : {}),
      },
      content: { 'application/json': { schema: ref('Error') } },
    };
  }
}

function addSuccessHeaders(op: Operation): void {
  const extra = op[RESPONSE_HEADERS] ?? [];
  delete op[RESPONSE_HEADERS];
  for (const [status, response] of Object.entries(op.responses)) {
    if (!status.startsWith('2')) continue;
    if (!response.description) response.description = STATUS_CODES[Number(status)] ?? status;
    const names: (keyof typeof HEADERS)[] = ['RequestId', ...(status === '201' ? (['Location'] as const) : []), ...extra];
    response.headers = Object.fromEntries([...new Set(names)].map((n) => [HEADERS[n].name, ref(n, 'headers')]));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Types and bounds from the class-validator decorators, so the document says exactly what the validation accepts.

function validatorsByClassName(): Map<string, ValidationMetadata[]> {
  const storage = getMetadataStorage();
  // class-validator has no public list of its classes; its storage keeps them in this map.
  type Target = abstract new (...args: never[]) => unknown;
  const targets = [...(storage as unknown as { validationMetadatas: Map<Target | string, unknown> }).validationMetadatas.keys()];
  return new Map(
    targets
      .filter((t): t is Target => typeof t === 'function')
      .map((t) => [t.name, storage.getTargetValidationMetadatas(t, '', false, false)] as const),
  );
}

function applyValidators(schema: Schema, rules: ValidationMetadata[]): void {
  for (const rule of rules) {
    const prop = schema.properties?.[rule.propertyName] as Schema | undefined;
    if (prop && rule.name === IS_NULLABLE) {
      // `@Nullable()`: null is a value. A bare $ref cannot carry `nullable` in OpenAPI 3.0: wrap it in allOf; and
      // `nullable` needs a sibling `type`. A referenced schema is a DTO class, so an object (enums are inlined).
      if (prop.$ref) schema.properties![rule.propertyName] = { type: 'object', allOf: [{ $ref: prop.$ref }], nullable: true };
      else {
        if (prop.allOf && !prop.type) prop.type = 'object';
        prop.nullable = true;
      }
      continue;
    }
    if (!prop || prop.$ref || prop.allOf) continue;
    const target = (rule.each && prop.type === 'array' ? prop.items : prop) as Schema;
    const [arg] = rule.constraints ?? [];
    switch (rule.name) {
      case 'isInt':
        target.type = 'integer';
        delete target.format;
        break;
      case 'isNumber':
        if (target.type === 'number') target.format = 'double';
        break;
      case 'min':
        target.minimum = arg;
        break;
      case 'max':
        target.maximum = arg;
        break;
      case 'maxLength':
        target.maxLength = arg;
        break;
      case 'minLength':
        target.minLength = arg;
        break;
      case 'arrayMaxSize':
        prop.maxItems = arg;
        break;
      case 'arrayMinSize':
        prop.minItems = arg;
        break;
      case 'matches': {
        // A JSON Schema pattern is an ECMA-262 regex without flags: only unflagged ones carry over.
        const re = arg instanceof RegExp ? arg : typeof arg === 'string' ? new RegExp(arg) : undefined;
        if (re && !re.flags && target.type === 'string' && !target.pattern) target.pattern = re.source;
        break;
      }
      case 'isUuid':
        target.format = 'uuid';
        break;
      case 'isIso8601':
        target.format = 'date-time';
        break;
      case 'isUrl':
        target.format = 'uri';
        break;
      case IS_BOUNDED_JSON_OBJECT: {
        // JSON Schema has no keyword for depth or serialised size: the description states them.
        const { maxDepth, maxBytes } = arg as { maxDepth: number; maxBytes: number };
        const bound = `A JSON object at most ${maxDepth} levels deep (the object itself is level 1) and ${maxBytes} bytes long as JSON.`;
        target.description = target.description ? `${target.description as string} ${bound}` : bound;
        break;
      }
      case 'isIn':
        // Only where the values have the declared type (a boolean query parameter is validated as 'true'/'false').
        if (!target.enum && Array.isArray(arg) && arg.every((v) => typeof v === (target.type ?? typeof v))) target.enum = arg;
        break;
    }
  }
}

/**
 * Query parameters get the rules of the query DTO property of the same name (classes named `…Query` or
 * `…QueryDto`); a name whose rules differ between those classes is left as declared.
 */
function applyQueryValidators(document: OpenAPIObject, validators: Map<string, ValidationMetadata[]>): void {
  const byName = new Map<string, ValidationMetadata[][]>();
  for (const [className, rules] of validators) {
    if (!/Query(Dto)?$/.test(className)) continue;
    for (const name of new Set(rules.map((r) => r.propertyName))) {
      byName.set(name, [...(byName.get(name) ?? []), rules.filter((r) => r.propertyName === name)]);
    }
  }
  const signature = (rules: ValidationMetadata[]) =>
    JSON.stringify(rules.map((r) => [r.name, r.each, r.constraints]).sort((a, b) => String(a[0]).localeCompare(String(b[0]))));
  for (const { op } of operationsOf(document)) {
    for (const param of op.parameters ?? []) {
      const sets = param.in === 'query' ? byName.get(param.name as string) : undefined;
      if (!sets || new Set(sets.map(signature)).size !== 1 || !param.schema) continue;
      applyValidators({ properties: { [param.name as string]: param.schema as Json } }, sets[0]);
    }
  }
}

/** Numbers are integers unless they say otherwise (`format: double`): every count, limit and duration is one. */
function integersByDefault(node: unknown): void {
  if (Array.isArray(node)) return node.forEach(integersByDefault);
  if (!node || typeof node !== 'object') return;
  const s = node as Schema;
  if (s.type === 'number' && s.format !== 'double' && s.format !== 'float') s.type = 'integer';
  for (const value of Object.values(s)) integersByDefault(value);
}

/** Properties that name one of the API's resources by its id (a UUID); Temporal's ids are not among them. */
const UUID_PROPERTIES = new Set([
  'id',
  'taskId',
  'runId',
  'scheduleId',
  'calendarId',
  'tenantId',
  'apiKeyId',
  'actorKeyId',
  'retryOfRunId',
  'redrivenByRunId',
  'pipelineId',
  'pipelineRunId',
  'retryOfPipelineRunId',
  'reusedFromPipelineRunId',
]);

/** Timestamps (`…At`) are ISO 8601 strings; resource ids are UUIDs. */
function formatsByName(schemas: Record<string, Schema>): void {
  for (const schema of Object.values(schemas)) {
    for (const [name, prop] of Object.entries(schema.properties ?? {}) as [string, Schema][]) {
      if (prop.type !== 'string' || prop.format || prop.enum) continue;
      if (/At$/.test(name)) prop.format = 'date-time';
      else if (UUID_PROPERTIES.has(name)) prop.format = 'uuid';
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Executor specs: a task is a shell task or an HTTP task, told apart by `executor`.

const JSON_VALUE: Json = {
  description: 'Any JSON value; a string is sent as is, anything else as JSON.',
  oneOf: [
    { type: 'string' },
    { type: 'object', additionalProperties: true },
    { type: 'array', items: {} },
    { type: 'number', format: 'double' },
    { type: 'boolean' },
  ],
};

function splitShellSpec(schemas: Record<string, Schema>, name: string): void {
  const shell = schemas[name];
  if (!shell?.properties?.command || !shell.properties.script) return;
  const { command, args, script, ...common } = shell.properties;
  schemas.ShellCommandSpec = {
    type: 'object',
    description: 'Runs a program found on PATH with its arguments (no shell involved).',
    required: ['command'],
    properties: { command, ...(args ? { args } : {}), ...common },
  };
  schemas.ShellScriptSpec = {
    type: 'object',
    description: 'Runs a script with /bin/sh -c.',
    required: ['script'],
    properties: { script, ...common },
  };
  schemas[name] = {
    description: 'Give `command` (with optional `args`) or `script`, not both.',
    oneOf: [ref('ShellCommandSpec'), ref('ShellScriptSpec')],
  };
}

function typeJsonBodies(schemas: Record<string, Schema>): void {
  for (const schema of Object.values(schemas)) {
    const body = schema.properties?.body;
    if (body && !body.$ref && !body.oneOf && (body.type === 'object' || body.type === undefined)) {
      schema.properties!.body = { ...JSON_VALUE, ...(body.description ? { description: body.description } : {}) };
    }
  }
}

/** Splits a task body with `executor`, `shell` and `http` into a discriminated `oneOf` of a shell and an HTTP variant. */
function discriminateExecutor(schemas: Record<string, Schema>, name: string, shellRef: Json, httpRef: Json): void {
  const task = schemas[name];
  // Only where executor is required: a partial update may change fields without naming the executor.
  if (!task?.properties?.executor || task.oneOf || !task.required?.includes('executor')) return;
  const executor = task.properties.executor;
  const common = Object.fromEntries(Object.entries(task.properties).filter(([key]) => !['executor', 'shell', 'http'].includes(key)));
  const required = (task.required ?? []).filter((r) => r !== 'executor');
  const variant = (kind: 'shell' | 'http', spec: Json): Schema => ({
    type: 'object',
    required: ['executor', kind, ...required],
    properties: { executor: { type: 'string', enum: [kind], description: executor.description }, [kind]: spec, ...common },
  });
  const shellName = `${name.replace(/Dto$/, '')}Shell`;
  const httpName = `${name.replace(/Dto$/, '')}Http`;
  schemas[shellName] = variant('shell', shellRef);
  schemas[httpName] = variant('http', httpRef);
  schemas[name] = {
    description: task.description ?? 'A shell task or an HTTP task, by `executor`.',
    oneOf: [ref(shellName), ref(httpName)],
    discriminator: { propertyName: 'executor', mapping: { shell: ref(shellName).$ref, http: ref(httpName).$ref } },
  };
}

/** Response properties that have the shape of a request DTO: typed by it rather than as a bare object. */
const RESPONSE_SHAPES: Record<string, Record<string, string>> = {
  TaskResponse: { shell: 'ShellSpecDto', http: 'HttpSpecDto', retry: 'RetryDto', alerts: 'AlertSpecDto' },
  RunResponse: { overrides: 'TriggerRunDto' },
  PipelineResponse: { alerts: 'AlertSpecDto' },
  PipelineStepResponse: { overrides: 'TriggerRunDto' },
  ScheduleResponse: { spec: 'ScheduleSpecDto', policies: 'SchedulePoliciesDto' },
};

function typeResponseSpecs(schemas: Record<string, Schema>): void {
  for (const [name, shapes] of Object.entries(RESPONSE_SHAPES)) {
    const props = schemas[name]?.properties;
    for (const [prop, spec] of Object.entries(shapes)) {
      if (!props?.[prop] || props[prop].$ref || !schemas[spec]) continue;
      const { description, nullable } = props[prop] as Schema;
      props[prop] = nullable ? { type: 'object', nullable: true, allOf: [ref(spec)], ...(description ? { description } : {}) } : ref(spec);
    }
  }
}

/** A free-form object (metadata, audit details) is a map of any JSON values, not an empty object. */
function openObjects(node: unknown): void {
  if (Array.isArray(node)) return node.forEach(openObjects);
  if (!node || typeof node !== 'object') return;
  const s = node as Schema;
  if (s.type === 'object' && !s.properties && s.additionalProperties === undefined && !s.allOf && !s.oneOf) s.additionalProperties = true;
  for (const value of Object.values(s)) openObjects(value);
}

// ---------------------------------------------------------------------------------------------------------------

/** The description of each tag (group of operations); a tag without one is named by itself. */
const TAGS: Record<string, string> = {
  alerts: "The tenant's default alert webhook, for tasks without alerts of their own.",
  'api-keys': 'API keys of the tenant: create (the key is shown once), list, revoke.',
  audit: 'The audit log: every change and every refused change, read-only.',
  calendars: 'Business calendars (holidays, weekly windows) that schedules exclude.',
  health: 'Liveness and readiness probes; no credentials.',
  pipelines: 'Pipelines: DAGs of task steps with trigger rules, conditions, outputs and fan-out; their versions, delete.',
  'pipeline-runs': 'Runs of pipelines: start, list, inspect every step, cancel, retry the failed part.',
  me: 'The caller: tenant, credential, role, permissions, limits and usage.',
  runs: 'Runs of tasks: start, list, inspect, cancel, retry, dead letters.',
  schedules: 'Schedules (Temporal Schedules) that run a task: spec, policies, previews, fires, backfill.',
  tasks: 'Tasks (what to run: a shell command or an HTTP request), their versions, disable, delete.',
  tenants: 'Tenants and their limits (platform admin).',
  workers: "The workers polling this deployment's task queues.",
};

/** States who may call the operation: the permission it needs, or that it needs none. */
function describeAccess(op: Operation): void {
  const permission = op[PERMISSION];
  delete op[PERMISSION];
  const access =
    op.security?.length === 0
      ? 'Needs no credentials.'
      : permission === 'authenticated'
        ? op.description
          ? undefined // the operation says so itself
          : 'Any valid API key or token may call it.'
        : permission
          ? `Needs the \`${permission}\` permission${permission === 'tenants:admin' ? ' (the platform admin key only)' : ''}.`
          : undefined;
  if (access) op.description = op.description ? `${String(op.description)}\n\n${access}` : access;
}

function finishContract(document: OpenAPIObject): OpenAPIObject {
  const components = (document.components ??= {});
  const schemas = (components.schemas ??= {}) as Record<string, Schema>;

  const validators = validatorsByClassName();
  for (const [name, schema] of Object.entries(schemas)) {
    const rules = validators.get(name);
    if (rules) applyValidators(schema, rules);
  }
  typeJsonBodies(schemas);
  typeResponseSpecs(schemas);
  splitShellSpec(schemas, 'ShellSpecDto');
  for (const name of Object.keys(schemas)) {
    if (/Task(Dto)?$/.test(name) && /^(Create|Update|Patch)/.test(name)) {
      discriminateExecutor(schemas, name, ref('ShellSpecDto'), ref('HttpSpecDto'));
    }
  }
  formatsByName(schemas);
  Object.assign(schemas, errorSchemas());
  components.headers = Object.fromEntries(
    Object.entries(HEADERS).map(([key, { description, schema }]) => [key, { description, schema: structuredClone(schema) as Json }]),
  );

  applyQueryValidators(document, validators);
  for (const { path, op } of operationsOf(document)) {
    // Every operation takes either credential, except those marked @ApiPublic (which say so with an empty list).
    op.security = op[PUBLIC] ? [] : [{ 'api-key': [] }, { bearer: [] }];
    for (const p of op.parameters ?? []) {
      if (p.in === 'path' && p.name === 'id') p.schema = { type: 'string', format: 'uuid' };
    }
    addSuccessHeaders(op);
    addErrorResponses(path, op);
    for (const response of Object.values(op.responses)) {
      response.headers = { 'x-request-id': ref('RequestId', 'headers'), ...(response.headers as Json | undefined) };
    }
    const media = (op.requestBody?.content as Record<string, Json> | undefined)?.['application/json'];
    const examples = op.operationId ? REQUEST_EXAMPLES[op.operationId] : undefined;
    if (media && examples) media.examples = structuredClone(examples);
    delete op[PUBLIC];
    describeAccess(op);
  }
  document.tags = [...new Set(operationsOf(document).flatMap(({ op }) => (op.tags as string[] | undefined) ?? []))]
    .sort()
    .map((name) => ({ name, description: TAGS[name] ?? name }));
  integersByDefault(document);
  openObjects(components.schemas);
  return document;
}
