/* The OpenAPI document as a runtime check: every response a test receives is validated against the schema the
 * document gives for its operation and status, with ajv. Stricter than the document reads on its face, on
 * purpose: a field the code returns but the document does not declare is drift too, so object schemas with
 * declared properties get `additionalProperties: false` unless they say otherwise. */
import Ajv from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import createClient from 'openapi-fetch';
import type { Client } from 'openapi-fetch';
import type { paths } from '../generated/openapi';

type Schema = Record<string, unknown>;
type Header = { schema?: Schema } | { $ref: string };
interface Response {
  content?: Record<string, { schema?: Schema }>;
  headers?: Record<string, Header>;
}
interface Operation {
  operationId?: string;
  responses: Record<string, Response>;
}
export interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema>; headers?: Record<string, { schema?: Schema }> };
}

const SCHEMA_REF = /^#\/components\/schemas\/(.+)$/;
// OpenAPI 3.0 annotations that JSON Schema (draft-07, ajv's default) does not know.
const ANNOTATIONS = ['example', 'discriminator', 'xml', 'externalDocs'];

/**
 * An OpenAPI 3.0 schema as JSON Schema: refs to components become refs to ajv schemas of the same name,
 * `nullable: true` becomes "null or the schema" (its 3.1 meaning, also right around `allOf: [$ref]`), and
 * objects with declared properties refuse undeclared ones.
 */
export function toJsonSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (!node || typeof node !== 'object') return node;
  const out: Schema = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === '$ref' && typeof value === 'string') {
      const m = SCHEMA_REF.exec(value);
      if (!m) throw new Error(`unsupported $ref ${value}`);
      out.$ref = `${m[1]}.json`;
    } else if (key === 'properties' && value && typeof value === 'object') {
      out.properties = Object.fromEntries(Object.entries(value).map(([name, s]) => [name, toJsonSchema(s)]));
    } else if (key !== 'nullable') {
      out[key] = toJsonSchema(value);
    }
  }
  if (out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  if ((node as Schema).nullable === true) {
    const { description, ...rest } = out;
    return { ...(description !== undefined ? { description } : {}), anyOf: [{ type: 'null' }, rest] };
  }
  return out;
}

export class ContractValidator {
  private readonly ajv: Ajv;
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(readonly document: OpenApiDocument) {
    this.ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, strictRequired: false });
    addFormats(this.ajv);
    this.ajv.addVocabulary(ANNOTATIONS);
    for (const [name, schema] of Object.entries(document.components.schemas))
      this.ajv.addSchema(toJsonSchema(schema) as Schema, `${name}.json`);
  }

  /** The documented response of an operation with this status; throws when the status is not documented. */
  response(path: string, method: string, status: number): Response {
    const op = this.document.paths[path]?.[method.toLowerCase()];
    if (!op) throw new Error(`${method} ${path} is not in the document`);
    const response = op.responses[String(status)] ?? op.responses[`${String(status)[0]}XX`] ?? op.responses.default;
    if (!response) throw new Error(`${method} ${path} (${op.operationId}) answered ${status}, which the document does not list`);
    return response;
  }

  /**
   * Errors of a response against the document, or [] when it conforms: the status must be documented, the
   * body must match its schema, and each documented header that is present must match its own.
   */
  check(path: string, method: string, status: number, body: unknown, headers: Headers = new Headers()): string[] {
    const response = this.response(path, method, status);
    const errors: string[] = [];
    const schema = response.content?.['application/json']?.schema;
    if (!schema) {
      if (body !== null && body !== undefined && body !== '') errors.push(`no body is documented, got ${JSON.stringify(body)}`);
    } else {
      errors.push(...this.validate(`body ${method} ${path} ${status}`, schema, body, ''));
    }
    for (const [name, declared] of Object.entries(response.headers ?? {})) {
      const value = headers.get(name);
      if (value === null) continue;
      const header = '$ref' in declared ? this.document.components.headers?.[declared.$ref.split('/').pop() as string] : declared;
      const headerSchema = header?.schema ?? {};
      const typed = headerSchema.type === 'integer' || headerSchema.type === 'number' ? Number(value) : value;
      errors.push(...this.validate(`header ${method} ${path} ${status} ${name}`, headerSchema, typed, `header ${name}`));
    }
    return errors;
  }

  private validate(cacheKey: string, schema: Schema, value: unknown, where: string): string[] {
    let validate = this.compiled.get(cacheKey);
    if (!validate) {
      validate = this.ajv.compile(toJsonSchema(schema) as Schema);
      this.compiled.set(cacheKey, validate);
    }
    if (validate(value)) return [];
    return (validate.errors ?? []).map((e: ErrorObject) => `${where}${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
  }
}

/** Every response checked by one client, for assertions at the end of a test. */
export interface CheckedResponse {
  operation: string;
  status: number;
}

/**
 * A typed openapi-fetch client whose every response is validated against the document: a body that does not
 * conform, or a status the operation does not document, rejects the call.
 */
export function typedClient(
  baseUrl: string,
  validator: ContractValidator,
  headers: Record<string, string>,
): { client: Client<paths>; checked: CheckedResponse[] } {
  const client = createClient<paths>({ baseUrl, headers });
  const checked: CheckedResponse[] = [];
  client.use({
    async onResponse({ request, response, schemaPath }) {
      const text = await response.clone().text();
      const body: unknown = text ? JSON.parse(text) : null;
      const errors = validator.check(schemaPath, request.method, response.status, body, response.headers);
      if (errors.length) {
        throw new Error(
          `${request.method} ${schemaPath} ${response.status} does not match the document:\n${errors.join('\n')}\n${text.slice(0, 2000)}`,
        );
      }
      checked.push({ operation: `${request.method} ${schemaPath}`, status: response.status });
      return undefined;
    },
  });
  return { client, checked };
}
