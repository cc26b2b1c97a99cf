/* The pure rules of task versions: which fields a change touched, and If-Match against a version. */
import fc from 'fast-check';
import type { TaskDefinition } from '../../apps/api/src/tasks/task-definition';
import { canonicalJson, etagOf, ifMatchHolds } from '../../apps/api/src/common/versioning';
import { changedFields } from '../../apps/api/src/tasks/task-definition';

const shellDefinition = fc.record({
  name: fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/),
  description: fc.option(fc.string({ maxLength: 20 }), { nil: null }),
  executor: fc.constant('shell'),
  shell: fc.record(
    {
      script: fc.string({ minLength: 1, maxLength: 10 }),
      env: fc.dictionary(fc.stringMatching(/^[A-Z]{1,4}$/), fc.string({ maxLength: 5 }), { maxKeys: 3 }),
      secretEnv: fc.dictionary(fc.stringMatching(/^[A-Z]{1,4}$/), fc.constant('***'), { maxKeys: 2 }),
    },
    { requiredKeys: ['script'] },
  ),
  shardCount: fc.integer({ min: 1, max: 5 }),
  alerts: fc.constant(null),
  timeoutSeconds: fc.integer({ min: 1, max: 100 }),
  retry: fc.record({ maximumAttempts: fc.integer({ min: 1, max: 5 }), backoffCoefficient: fc.integer({ min: 1, max: 3 }) }),
  priority: fc.integer({ min: -5, max: 5 }),
  tags: fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }),
  metadata: fc.dictionary(fc.string({ maxLength: 3 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
  enabled: fc.boolean(),
}) as unknown as fc.Arbitrary<TaskDefinition>;

/** The same value with every object's keys in reverse order. */
function reordered(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reordered);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.entries(v)
        .reverse()
        .map(([k, x]) => [k, reordered(x)]),
    );
  return v;
}

describe('changedFields', () => {
  test('equal definitions have no changed field, whatever the key order', () => {
    fc.assert(fc.property(shellDefinition, (d) => expect(changedFields(d, reordered(d) as TaskDefinition)).toEqual([])));
  });

  test('a field is listed exactly when its value differs; executor block fields by name', () => {
    fc.assert(
      fc.property(shellDefinition, shellDefinition, (x, y) => {
        const changed = changedFields(x, y);
        const a = x as unknown as Record<string, unknown>;
        const b = y as unknown as Record<string, unknown>;
        for (const key of Object.keys(a)) {
          const listed = key === 'shell' ? changed.some((c) => c.startsWith('shell.')) : changed.includes(key);
          expect([key, listed]).toEqual([key, canonicalJson(a[key]) !== canonicalJson(b[key])]);
        }
        expect([...changed].sort()).toEqual(changed);
        expect(changedFields(y, x)).toEqual(changed);
      }),
    );
  });

  test('a change of executor lists the executor and both blocks, not their fields', () => {
    const shell = { name: 't', executor: 'shell', shell: { command: 'true', args: [] } } as unknown as TaskDefinition;
    const http = { name: 't', executor: 'http', http: { method: 'GET', url: 'https://example.com' } } as unknown as TaskDefinition;
    expect(changedFields(shell, http)).toEqual(['executor', 'http', 'shell']);
    const script = { ...shell, shell: { script: 'echo' } } as unknown as TaskDefinition;
    expect(changedFields(shell, script)).toEqual(['shell.args', 'shell.command', 'shell.script']);
  });
});

describe('If-Match', () => {
  test('no header or * always holds; otherwise only the current version as a strong tag (alone or in a list) does', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 1, max: 10_000 }), (current, other) => {
        expect(ifMatchHolds(undefined, current)).toBe(true);
        expect(ifMatchHolds('*', current)).toBe(true);
        expect(ifMatchHolds(etagOf(current), current)).toBe(true);
        // Strong comparison (RFC 9110): a weak tag never matches, alone or in a list.
        expect(ifMatchHolds(`W/${etagOf(current)}`, current)).toBe(false);
        expect(ifMatchHolds(`W/${etagOf(current)}, ${etagOf(other)}`, current)).toBe(other === current);
        expect(ifMatchHolds(`${etagOf(other)}, ${etagOf(current)}`, current)).toBe(true);
        expect(ifMatchHolds(etagOf(other), current)).toBe(other === current);
        // Unquoted, or not a version at all: never matches.
        expect(ifMatchHolds(String(current), current)).toBe(false);
        expect(ifMatchHolds('', current)).toBe(false);
      }),
    );
  });
});
