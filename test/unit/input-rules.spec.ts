import fc from 'fast-check';
import { jsonDepth, jsonProblem, textProblem } from '../../apps/api/src/common/input-rules';

const BOUNDS = { maxDepth: 32 };

/** The text rule restated code point by code point, independently of the regular expression. */
function allowed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = s.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
      i++;
      continue;
    }
    if (c >= 0xdc00 && c <= 0xdfff) return false;
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || c === 0x7f) return false;
  }
  return true;
}

test('textProblem refuses exactly control characters other than tab/LF/CR, DEL and unpaired surrogates', () => {
  fc.assert(
    fc.property(
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 10 }),
      (a, b) => {
        for (const s of [a, b, a + b]) expect(textProblem(s) === undefined).toBe(allowed(s));
      },
    ),
    { numRuns: 2000 },
  );
  expect(textProblem('tab\there\nline\r\n😀')).toBeUndefined();
  expect(textProblem('a\u0000')).toContain('U+0000');
});

const cleanText = fc.string({ unit: 'grapheme', maxLength: 8 }).filter(allowed);
// Identifier keys, so a path like a.b[2] splits back into its steps.
const key = fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/);
const cleanJson = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.oneof(cleanText, fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null)),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(key, tie('value'), { maxKeys: 4 }),
  ),
})).value;

/** All paths of a value's strings, named as the walker names them. */
function stringPaths(v: unknown, path: string, out: string[]): string[] {
  if (typeof v === 'string') out.push(path);
  else if (Array.isArray(v)) v.forEach((x, i) => stringPaths(x, `${path}[${i}]`, out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) stringPaths(x, path ? `${path}.${k}` : k, out);
  return out;
}

function setAt(v: unknown, path: string, value: string): unknown {
  const copy = structuredClone(v);
  const steps = path.match(/[^.[\]]+/g)!;
  let node = copy as Record<string, unknown>;
  for (const step of steps.slice(0, -1)) node = node[step] as Record<string, unknown>;
  node[steps.at(-1)!] = value;
  return copy;
}

test('clean JSON passes; one NUL anywhere is found and named by its path', () => {
  fc.assert(
    fc.property(fc.dictionary(key, cleanJson, { minKeys: 1, maxKeys: 5 }), fc.nat(), (value, pick) => {
      expect(jsonProblem(value, '', BOUNDS)).toBeUndefined();
      const paths = stringPaths(value, '', []);
      fc.pre(paths.length > 0);
      const path = paths[pick % paths.length]!;
      const problem = jsonProblem(setAt(value, path, 'x\u0000y'), '', BOUNDS);
      expect(problem?.field).toBe(path);
      expect(problem?.message).toContain('U+0000');
    }),
    { numRuns: 500 },
  );
});

test('depth is bounded without recursion, whatever the nesting', () => {
  const nest = (n: number, container: 'object' | 'array') => {
    let v: unknown = 1;
    for (let i = 0; i < n; i++) v = container === 'object' ? { a: v } : [v];
    return v;
  };
  for (const container of ['object', 'array'] as const) {
    expect(jsonProblem({ x: nest(31, container) }, '', BOUNDS)).toBeUndefined();
    expect(jsonProblem({ x: nest(32, container) }, '', BOUNDS)).toEqual({ field: 'x', message: expect.stringContaining('32 levels') });
    expect(jsonProblem({ x: nest(200_000, container) }, '', BOUNDS)?.field).toBe('x');
    expect(jsonDepth(nest(200_000, container), 8)).toBe(9);
    expect(jsonDepth(nest(8, container), 8)).toBe(8);
  }
});

test('prototype keys are refused with their path; a value count is a bound only when given', () => {
  expect(jsonProblem(JSON.parse('{"a":{"__proto__":{"x":1}}}'), '', BOUNDS)).toEqual({ field: 'a.__proto__', message: expect.any(String) });
  expect(jsonProblem({ a: [{ constructor: 1 }] }, '', BOUNDS)?.field).toBe('a[0].constructor');
  // Bodies have no value count (an opaque http.body may be a long array): only depth and BODY_LIMIT_BYTES.
  expect(jsonProblem({ a: new Array(100_000).fill(0) }, '', { maxDepth: 32 })).toBeUndefined();
  expect(jsonProblem({ a: new Array(200).fill('x') }, '', { maxDepth: 3, maxValues: 200 })?.message).toContain('200 values');
  expect(jsonProblem({ a: new Array(198).fill('x') }, '', { maxDepth: 3, maxValues: 200 })).toBeUndefined();
});
