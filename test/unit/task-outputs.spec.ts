/* The pure rules of task outputs: the `$TASK_OUTPUTS` parser (name=value lines or one JSON object) and the
 * masking of secret values in outputs. Property-based with fast-check where a round trip states the rule. */
import { TaskOutputsError, maskOutputs, parseTaskOutputs } from '@task-scheduler/activities';
import { PIPELINE_LIMITS } from '@task-scheduler/contracts';
import fc from 'fast-check';

const parse = (text: string): unknown => parseTaskOutputs(Buffer.from(text, 'utf8'));
const nameArb = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,20}$/);
// Printable, one line: no control characters (so no newline), and no lone surrogates.
const valueArb = fc
  .string({ unit: 'grapheme', maxLength: 40 })
  .filter((v) => ![...v].some((c) => c.charCodeAt(0) < 0x20 || c === '\u007f'));

test('property: a map of valid names to printable single-line values, written as lines, parses back exactly', () => {
  fc.assert(
    fc.property(fc.dictionary(nameArb, valueArb, { minKeys: 1, maxKeys: 20 }), fc.boolean(), (map, finalNewline) => {
      // A value may itself start with `{`, `#` or `=`: only the first character of the file decides JSON.
      const lines = Object.entries(map).map(([k, v]) => `${k}=${v}`);
      expect(parse(lines.join('\n') + (finalNewline ? '\n' : ''))).toEqual(map);
    }),
  );
});

test('property: a JSON object round-trips', () => {
  fc.assert(
    fc.property(
      fc
        .dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 10 })
        .filter((o) => !JSON.stringify(o).includes('\\u0000') && !/\\ud[89a-f]/i.test(JSON.stringify(o))),
      (obj) => {
        // -0 is written as 0; JSON cannot tell them apart.
        const expected = JSON.parse(JSON.stringify(obj));
        expect(parse(JSON.stringify(obj, null, 1))).toEqual(expected);
        expect(parse(`  \n${JSON.stringify(obj)}`)).toEqual(expected);
      },
    ),
  );
});

test('lines: blank lines and # comments are skipped, the value is verbatim, the last repeat wins', () => {
  expect(parse('# rows of the export\n\nrows=3\n  \npath= /data/x.csv \nrows=4\nempty=\neq=a=b\n')).toEqual({
    rows: '4',
    path: ' /data/x.csv ',
    empty: '',
    eq: 'a=b',
  });
});

test('an empty file, or white space only, is no outputs; comments only are an empty map', () => {
  expect(parse('')).toBeNull();
  expect(parse(' \n\n\t')).toBeNull();
  expect(parse('# nothing\n')).toEqual({});
});

test('a malformed line names its number', () => {
  expect(() => parse('a=1\n\nnot a pair\n')).toThrow(TaskOutputsError);
  expect(() => parse('a=1\n\nnot a pair\n')).toThrow(/^outputs: line 3 is not name=value/);
  expect(() => parse('1a=x')).toThrow(/line 1 is not name=value/);
  expect(() => parse('=x')).toThrow(/line 1 is not name=value/);
  expect(() => parse(` # indented comment`)).toThrow(/line 1 is not name=value/);
  expect(() => parse(`${'n'.repeat(64)}=x`)).toThrow(/line 1 is not name=value/);
});

test('invalid JSON, or JSON that is not one object, is refused without quoting the text', () => {
  expect(() => parse('{"a": s3cr3t}')).toThrow(/^outputs: \$TASK_OUTPUTS starts with \{ but is not valid JSON/);
  expect(() => parse('{"a": s3cr3t}')).not.toThrow(/s3cr3t/);
  expect(() => parse('{"a":1} {"b":2}')).toThrow(/not valid JSON/);
  // An array is not an object: its first character is not `{`, so it is read as lines.
  expect(() => parse('[1,2]')).toThrow(/line 1 is not name=value/);
});

test('over the cap: the file size, and the stored JSON size, are both bounded', () => {
  const cap = PIPELINE_LIMITS.maxOutputBytes;
  expect(() => parseTaskOutputs(Buffer.alloc(70_000, 'a'))).toThrow('outputs: $TASK_OUTPUTS is 70,000 bytes; at most 65,536 are taken');
  // The stored form `{"a":"…"}` is 8 bytes longer than the line `a=…`.
  expect(parseTaskOutputs(Buffer.from(`a=${'x'.repeat(cap - 8)}`))).toEqual({ a: 'x'.repeat(cap - 8) });
  expect(() => parseTaskOutputs(Buffer.from(`a=${'x'.repeat(cap - 7)}`))).toThrow('outputs: the outputs are 65,537 bytes as JSON');
  // 1e9 is 3 bytes in the file and 10 as stored JSON.
  const numbers = `{"n":[${Array.from({ length: 12_000 }, () => '1e9').join(',')}]}`;
  expect(Buffer.byteLength(numbers)).toBeLessThanOrEqual(cap);
  expect(() => parse(numbers)).toThrow(/^outputs: the outputs are [\d,]+ bytes as JSON; at most 65,536 are taken$/);
});

test('what PostgreSQL cannot store is refused: NUL, lone surrogates, bytes that are not UTF-8', () => {
  expect(() => parse('a=x\u0000y')).toThrow(/NUL character/);
  expect(() => parse('{"a":"\\u0000"}')).toThrow(/NUL character/);
  expect(() => parse('{"\\ud800":1}')).toThrow(/lone UTF-16 surrogate/);
  expect(() => parseTaskOutputs(Buffer.from([0x61, 0x3d, 0xff]))).toThrow(/not UTF-8 text/);
  expect(parse('{"emoji":"\\ud83d\\ude00"}')).toEqual({ emoji: '😀' });
});

test('secrets of 4 characters or more are masked in keys and values at any depth; shorter ones are not', () => {
  const secrets = ['s3cr3t-token', 'abc'];
  expect(
    maskOutputs({ url: 'https://x/?t=s3cr3t-token', list: ['s3cr3t-token', 1, { 's3cr3t-token': 'ok' }], abc: 'abc', n: 7 }, secrets),
  ).toEqual({ url: 'https://x/?t=***', list: ['***', 1, { '***': 'ok' }], abc: 'abc', n: 7 });
  // A number that is a secret's text is masked too.
  expect(maskOutputs({ pin: 48151623, other: 42 }, ['48151623'])).toEqual({ pin: '***', other: 42 });
  expect(maskOutputs({ a: 'x' }, [])).toEqual({ a: 'x' });
});

test('property: no masked output contains a secret of 4 characters or more', () => {
  fc.assert(
    fc.property(fc.dictionary(nameArb, valueArb, { maxKeys: 8 }), fc.stringMatching(/^[A-Za-z0-9]{4,8}$/), (map, secret) => {
      const masked = maskOutputs({ ...map, leak: `before ${secret} after`, [secret]: secret }, [secret]);
      for (const [k, v] of Object.entries(masked)) {
        expect(k).not.toContain(secret);
        expect(v).not.toContain(secret);
      }
      expect(masked.leak).toBe('before *** after');
    }),
  );
});

test('a key named __proto__ stays a key', () => {
  const parsed = parse('{"__proto__":{"polluted":true}}') as Record<string, unknown>;
  const masked = maskOutputs(parsed, ['secret']);
  expect(Object.keys(masked)).toEqual(['__proto__']);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
});
