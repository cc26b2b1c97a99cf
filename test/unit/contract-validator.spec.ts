/* The runtime contract check of the typed-client test (test/support/openapi-contract.ts) on a small document:
 * what it accepts and refuses, so a passing e2e run means the responses conform, not that the check is lax. */
import fc from 'fast-check';
import { ContractValidator, toJsonSchema } from '../support/openapi-contract';
import type { OpenApiDocument } from '../support/openapi-contract';

const document: OpenApiDocument = {
  paths: {
    '/things/{id}': {
      get: {
        operationId: 'getThing',
        responses: {
          '200': { content: { 'application/json': { schema: { $ref: '#/components/schemas/Thing' } } } },
          '204': {},
          '4XX': { content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
        },
      },
    },
  },
  components: {
    schemas: {
      Owner: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } },
      Thing: {
        type: 'object',
        required: ['id', 'count', 'owner'],
        properties: {
          id: { type: 'string', format: 'uuid', example: '0b0c0a51-7a8f-4c44-9a3c-8c2a7f9e6d10' },
          count: { type: 'integer', minimum: 0 },
          note: { type: 'string', nullable: true },
          owner: { type: 'object', nullable: true, allOf: [{ $ref: '#/components/schemas/Owner' }] },
          labels: { type: 'object', additionalProperties: { type: 'string' } },
        },
      },
      Error: { type: 'object', required: ['error'], properties: { error: { type: 'object', properties: { code: { type: 'string' } } } } },
    },
  },
};

const validator = new ContractValidator(document);
const check = (status: number, body: unknown) => validator.check('/things/{id}', 'GET', status, body);
const thing = { id: '0b0c0a51-7a8f-4c44-9a3c-8c2a7f9e6d10', count: 3, owner: { name: 'ann' } };

test('a conforming body passes, with nullable fields null and a free-form map', () => {
  expect(check(200, thing)).toEqual([]);
  expect(check(200, { ...thing, note: null, owner: null, labels: { a: 'b' } })).toEqual([]);
  expect(check(204, null)).toEqual([]);
  expect(check(404, { error: { code: 'X' } })).toEqual([]);
});

test('undeclared fields, missing required ones, wrong types and formats are refused', () => {
  fc.assert(
    fc.property(
      // Undeclared in both Thing and Owner (a key `name` is Owner's own field).
      fc.string({ minLength: 1 }).filter((k) => !['id', 'count', 'note', 'owner', 'labels', 'name', '__proto__'].includes(k)),
      fc.jsonValue(),
      (key, value) => {
        expect(check(200, { ...thing, [key]: value })).not.toEqual([]);
        expect(check(200, { ...thing, owner: { name: 'ann', [key]: value } })).not.toEqual([]);
      },
    ),
    { numRuns: 100 },
  );
  for (const bad of [
    { ...thing, count: -1 },
    { ...thing, count: 1.5 },
    { ...thing, id: 'not-a-uuid' },
    { ...thing, owner: {} },
    { ...thing, labels: { a: 1 } },
    { id: thing.id, count: 1 },
    null,
  ]) {
    expect(check(200, bad)).not.toEqual([]);
  }
  expect(check(204, { unexpected: true })).not.toEqual([]);
});

test('a status the operation does not document is refused', () => {
  expect(() => check(500, { error: { code: 'X' } })).toThrow(/does not list/);
  expect(() => validator.check('/nowhere', 'GET', 200, {})).toThrow(/not in the document/);
});

test('nullable becomes "null or the schema", keeping the description outside', () => {
  expect(toJsonSchema({ description: 'd', nullable: true, type: 'object', allOf: [{ $ref: '#/components/schemas/Owner' }] })).toEqual({
    description: 'd',
    anyOf: [{ type: 'null' }, { type: 'object', allOf: [{ $ref: 'Owner.json' }] }],
  });
  expect(() => toJsonSchema({ $ref: 'https://elsewhere.example/x.json' })).toThrow(/unsupported \$ref/);
});
