import fc from 'fast-check';
import {
  EvaluationDeadlineExceeded,
  ExpressionError,
  checkExpression,
  evaluateCondition,
  evaluateValue,
  isWholeTemplate,
  overrideTemplates,
  renderOverrides,
  renderString,
  renderValue,
  templatesIn,
} from '@task-scheduler/core';
import type { ExpressionContext } from '@task-scheduler/core';
import { PIPELINE_LIMITS } from '@task-scheduler/contracts';

const ctx: ExpressionContext = {
  steps: {
    extract: { status: 'succeeded', outputs: { count: 5, path: '/tmp/x', rows: [1, 2, 3], ratio: 0.5, meta: { a: 1 } } },
    lines: { status: 'succeeded', outputs: { count: '5' } },
    fan: { status: 'succeeded', outputs: [{ n: 1 }, { n: 2 }] },
    gone: { status: 'skipped', outputs: null },
  },
  params: { date: '2026-12-01', limit: 10 },
};
const itemCtx: ExpressionContext = { ...ctx, item: { id: 'a1', size: 3 }, itemIndex: 2 };

function errorOf(run: () => unknown): ExpressionError {
  try {
    run();
  } catch (err) {
    if (err instanceof ExpressionError) return err;
    throw err;
  }
  throw new Error('expected an ExpressionError');
}

describe('checkExpression', () => {
  it.each([
    ['steps.extract.outputs.count > 3', [{ kind: 'step', key: 'extract' }]],
    ['steps["extract"].outputs', [{ kind: 'step', key: 'extract' }]],
    ['has(steps.a.outputs.x)', [{ kind: 'step', key: 'a' }]],
    [
      'steps.a.outputs.rows.all(r, r > params.min)',
      [
        { kind: 'step', key: 'a' },
        { kind: 'param', name: 'min' },
      ],
    ],
    ['steps.a.outputs.rows.map(r, r.x).filter(x, x > 0).exists(y, y == item)', [{ kind: 'step', key: 'a' }, { kind: 'item' }]],
    ['cel.bind(t, params.n, t + itemIndex)', [{ kind: 'param', name: 'n' }, { kind: 'item' }]],
    [
      'steps.a.?outputs.x.orValue(1) + size(steps.b.outputs)',
      [
        { kind: 'step', key: 'a' },
        { kind: 'step', key: 'b' },
      ],
    ],
    [
      '{"k": steps.a.status}[params.key]',
      [
        { kind: 'step', key: 'a' },
        { kind: 'param', name: 'key' },
      ],
    ],
    ['steps.a.status == "succeeded" && steps.a.status != "failed"', [{ kind: 'step', key: 'a' }]],
    ['1 + 2', []],
  ])('%s', (expr, refs) => {
    expect(checkExpression(expr)).toEqual(refs);
  });

  it.each([
    ['foo > 1', 'unknown name foo; use steps, params, item or itemIndex'],
    ['steps.a.outputs.rows.all(r, r > x)', 'unknown name x'],
    ['steps[params.k]', 'steps needs a literal name after it'],
    ['size(params)', 'params needs a literal name after it'],
    ['steps.a.status = "x"', ''],
    ['1 + "a"', 'cannot apply + to int and string'],
    ['{"__proto__": 1}', 'a map literal cannot have the key "__proto__"'],
    ['', 'the expression is empty'],
  ])('refuses %s', (expr, reason) => {
    const err = errorOf(() => checkExpression(expr));
    expect(err.message).toContain(`"${expr}": `);
    expect(err.reason).toContain(reason);
  });

  it('refuses what could block the worker', () => {
    expect(errorOf(() => checkExpression('params.s.matches("(a+)+$")')).reason).toContain('matches() is not available');
    expect(errorOf(() => checkExpression('matches(params.s, "a")')).reason).toContain('matches() is not available');
    expect(checkExpression('steps.a.outputs.rows.map(r, r.n).filter(n, n > 0).map(n, n * 2)')).toEqual([{ kind: 'step', key: 'a' }]);
    expect(checkExpression('cel.bind(a, [1], a + a)')).toEqual([]);
    // Nested, two macros over a fan-out's 1000 outputs are 10^6 steps per item.
    expect(errorOf(() => checkExpression('steps.a.outputs.exists(x, steps.a.outputs.exists(y, x.v + y.v == "z"))')).reason).toBe(
      'a macro (all, exists, exists_one, map, filter, cel.bind) cannot sit inside another; chain them instead, as in l.map(x, x.n).filter(n, n > 0)',
    );
    expect(errorOf(() => checkExpression('steps.a.outputs.rows.all(r, r.tags.exists(t, t == "x"))')).reason).toContain('cannot sit inside');
    expect(errorOf(() => checkExpression('cel.bind(a, [1], cel.bind(b, a + a, b))')).reason).toContain('cannot sit inside');
  });

  it('gives the expression and the reason apart', () => {
    const err = errorOf(() => checkExpression('foo'));
    expect(err).toBeInstanceOf(ExpressionError);
    expect([err.name, err.expression, err.reason, err.path]).toEqual([
      'ExpressionError',
      'foo',
      'unknown name foo; use steps, params, item or itemIndex',
      undefined,
    ]);
  });

  it('caps the length', () => {
    const expr = `params.a${' + 1'.repeat(PIPELINE_LIMITS.maxExpressionLength)}`;
    expect(errorOf(() => checkExpression(expr)).reason).toBe(`longer than ${PIPELINE_LIMITS.maxExpressionLength} characters`);
  });
});

describe('evaluateValue', () => {
  it.each([
    ['steps.extract.outputs.count > 3', true],
    ['steps.extract.outputs.count + 1', 6],
    ['steps.extract.outputs.ratio * 2.0', 1],
    ['steps.extract.outputs.ratio < 1', true],
    ['steps.extract.outputs.rows.all(r, r > 0)', true],
    ['steps.extract.outputs.rows.map(r, r * 10)', [10, 20, 30]],
    ['steps.extract.outputs.meta', { a: 1 }],
    ['steps.fan.outputs.map(o, o.n)', [1, 2]],
    ['int(steps.lines.outputs.count) > 3', true],
    ['has(steps.extract.outputs.nope)', false],
    ['steps.extract.outputs.?nope.orValue("d")', 'd'],
    ['steps.gone.status', 'skipped'],
    ['params.limit', 10],
    ['{"a": [1, "x", null, true]}', { a: [1, 'x', null, true] }],
    ['{1: "one"}', { 1: 'one' }],
    ['timestamp("2026-01-01T00:00:00Z")', '2026-01-01T00:00:00.000Z'],
    ['duration("90s")', '90s'],
    ['3u', 3],
  ])('%s', (expr, value) => {
    expect(evaluateValue(expr, ctx)).toEqual(value);
  });

  it('reads item and itemIndex in a fan-out', () => {
    expect(evaluateValue('item.id + "-" + string(itemIndex)', itemCtx)).toBe('a1-2');
    expect(evaluateValue('item.size * itemIndex', itemCtx)).toBe(6);
    expect(errorOf(() => evaluateValue('item', ctx)).reason).toBe('item is only set in a step with forEach');
  });

  it('names what a missing key could have been', () => {
    expect(errorOf(() => evaluateValue('steps.extract.outputs.nope', ctx)).message).toBe(
      '"steps.extract.outputs.nope": step extract has no output "nope" (it has: count, path, rows, ratio, meta)',
    );
    expect(errorOf(() => evaluateValue('steps.extract.outputs.nope > 1', ctx)).message).toBe(
      '"steps.extract.outputs.nope > 1": steps.extract.outputs.nope: step extract has no output "nope" (it has: count, path, rows, ratio, meta)',
    );
    expect(errorOf(() => evaluateValue('size(steps.x.outputs) > 0', ctx)).reason).toBe('steps.x: no step "x" upstream');
    expect(errorOf(() => evaluateValue('steps.extract.output', ctx)).reason).toBe(
      'step extract has no field "output" (it has: status, outputs)',
    );
    expect(errorOf(() => evaluateValue('params.nope', ctx)).reason).toBe('no parameter "nope" (it has: date, limit)');
    expect(errorOf(() => evaluateValue('steps.extract.outputs.meta.b', ctx)).reason).toBe('no key "b" (it has: a)');
    expect(errorOf(() => evaluateValue('steps.extract.outputs.path.b', ctx)).reason).toBe('no key "b": the value is a string');
    expect(errorOf(() => evaluateValue('steps.extract.outputs.rows.map(r, r.x)', ctx)).reason).toBe('r.x: no key "x"');
    expect(errorOf(() => evaluateValue('steps.gone.outputs.x', ctx)).reason).toBe('step gone has no outputs');
    expect(errorOf(() => evaluateValue('steps.fan.outputs.n', ctx)).reason).toContain('are a list (one entry per item)');
    expect(errorOf(() => evaluateValue('steps.extract.outputs.rows[5] + 1', ctx)).reason).toContain(
      'steps.extract.outputs.rows[5]: index out of bounds',
    );
  });

  it('does not read a name=value string as a number', () => {
    const err = errorOf(() => evaluateValue('steps.lines.outputs.count > 3', ctx));
    expect(err.reason).toBe(
      'cannot apply > to string and int; outputs written as name=value lines are strings: convert with int(...) or double(...)',
    );
  });

  it('refuses results that are not JSON', () => {
    expect(errorOf(() => evaluateValue('b"x"', ctx)).reason).toContain('bytes');
    expect(errorOf(() => evaluateValue('9223372036854775807', ctx)).reason).toContain('too large for a JSON number');
    expect(errorOf(() => evaluateValue('type(1)', ctx)).reason).toContain('not a JSON value');
  });

  it('refuses a result that expands beyond its bounds', () => {
    const big: ExpressionContext = { steps: {}, params: { l: Array.from({ length: 400 }, (_, i) => i), s: 'x'.repeat(10_000) } };
    expect(errorOf(() => evaluateValue('params.l.map(a, params.l)', big)).reason).toBe('the result has more than 100000 values');
    expect(errorOf(() => evaluateValue('params.l.map(a, params.s)', big)).reason).toBe(
      'the result holds more than 1048576 characters of text',
    );
    expect(evaluateValue('size(params.l.map(a, params.l))', big)).toBe(400);
  });

  it('refuses text PostgreSQL cannot store: a NUL character, a lone surrogate', () => {
    expect(errorOf(() => evaluateValue('["a\\u0000b"]', ctx)).message).toBe(
      '"["a\\u0000b"]": gives text with a NUL character, which cannot be stored',
    );
    expect(errorOf(() => evaluateValue('string(b"\\x00")', ctx)).reason).toBe('gives text with a NUL character, which cannot be stored');
    expect(errorOf(() => evaluateValue('{"k\\u0000": 1}', ctx)).reason).toContain('NUL character');
    const lone: ExpressionContext = { steps: {}, params: { s: 'a\uD800b' } };
    expect(errorOf(() => evaluateValue('params.s', lone)).reason).toContain('lone UTF-16 surrogate');
    expect(evaluateValue('"😀"', ctx)).toBe('😀');
  });

  it('quotes at most 200 characters of a value in an error', () => {
    const long: ExpressionContext = { steps: {}, params: { s: 'x'.repeat(100_000) } };
    const err = errorOf(() => evaluateCondition('params.s', long));
    expect(err.reason).toBe(`must be true or false, got string "${'x'.repeat(196)}...`);
    expect(err.message.length).toBeLessThan(700);
  });

  it('evaluates nothing once the context deadline has passed', () => {
    expect(() => evaluateValue('1 + 1', { ...ctx, deadline: Date.now() - 1 })).toThrow(EvaluationDeadlineExceeded);
    expect(evaluateValue('1 + 1', { ...ctx, deadline: Date.now() + 60_000 })).toBe(2);
  });

  it('reports runtime errors in one line', () => {
    expect(errorOf(() => evaluateValue('1 / 0', ctx)).message).toBe('"1 / 0": division by zero');
  });
});

describe('evaluateCondition', () => {
  it('returns booleans', () => {
    expect(evaluateCondition('steps.extract.status == "succeeded"', ctx)).toBe(true);
    expect(evaluateCondition('params.limit < 3', ctx)).toBe(false);
  });
  it('refuses anything else', () => {
    expect(errorOf(() => evaluateCondition('params.date', ctx)).message).toBe(
      '"params.date": must be true or false, got string "2026-12-01"',
    );
  });
});

describe('templates', () => {
  it('finds the expressions', () => {
    expect(templatesIn('a {{ params.date }} b {{steps.x.outputs}}')).toEqual(['params.date', 'steps.x.outputs']);
    expect(templatesIn('{{ {"a": {"b": 1}} }}')).toEqual(['{"a": {"b": 1}}']);
    expect(templatesIn('{{ "}}" + \'}}\' }}')).toEqual(['"}}" + \'}}\'']);
    expect(templatesIn('{{ r"\\" }}')).toEqual(['r"\\"']);
    expect(templatesIn('no templates }} here')).toEqual([]);
    expect(templatesIn("{{ params.a // it's a comment }} and {{ params.b }}")).toEqual(["params.a // it's a comment", 'params.b']);
  });

  it('refuses an unclosed or empty template', () => {
    expect(errorOf(() => templatesIn('a {{ params.date')).message).toBe('"a {{ params.date": the "{{" at offset 2 is not closed with "}}"');
    expect(errorOf(() => templatesIn('x {{ }}')).reason).toBe('the template at offset 2 is empty');
  });

  it('tells a whole template', () => {
    expect(isWholeTemplate('{{ params.limit }}')).toBe(true);
    expect(isWholeTemplate('{{params.limit}}')).toBe(true);
    expect(isWholeTemplate(' {{ params.limit }}')).toBe(false);
    expect(isWholeTemplate('{{ a }}{{ b }}')).toBe(false);
    expect(isWholeTemplate('{{ a')).toBe(false);
    expect(isWholeTemplate('plain')).toBe(false);
  });

  it('renders strings', () => {
    expect(renderString('date={{ params.date }} n={{params.limit}}', ctx)).toBe('date=2026-12-01 n=10');
    expect(renderString('{{ steps.extract.outputs.meta }}|{{ steps.extract.outputs.rows }}', ctx)).toBe('{"a":1}|[1,2,3]');
    expect(renderString('{{ null }}{{ true }}{{ 0.5 }}', ctx)).toBe('true0.5');
    expect(renderString('{{ "{{" }} literal }}', ctx)).toBe('{{ literal }}');
  });

  it('keeps the type of a whole template', () => {
    expect(renderValue('{{ steps.extract.outputs.rows }}', ctx)).toEqual([1, 2, 3]);
    expect(renderValue('{{ params.limit }}', ctx)).toBe(10);
    expect(renderValue('n={{ params.limit }}', ctx)).toBe('n=10');
    expect(renderValue('{{ itemIndex }}', itemCtx)).toBe(2);
    expect(renderValue('{{ steps.fan.outputs.map(o, {"n": o.n, "i": itemIndex}) }}', itemCtx)).toEqual([
      { n: 1, i: 2 },
      { n: 2, i: 2 },
    ]);
  });

  it('replaces each template and leaves the text between them alone', () => {
    const text = fc.string({ unit: 'binary', maxLength: 20 }).filter((s) => !s.includes('{{') && !s.endsWith('{'));
    const value = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 10 }), fc.maxSafeInteger(), fc.boolean(), fc.constant(null));
    fc.assert(
      fc.property(text, fc.array(fc.tuple(value, text), { maxLength: 4 }), (head, rest) => {
        const template = head + rest.map(([v, t]) => `{{${JSON.stringify(v)}}}${t}`).join('');
        const expected = head + rest.map(([v, t]) => `${v === null ? '' : String(v)}${t}`).join('');
        expect(renderString(template, ctx)).toBe(expected);
        expect(templatesIn(template)).toHaveLength(rest.length);
      }),
      { numRuns: 200 },
    );
  });

  it('renders text without templates as is and round-trips JSON through a whole template', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary' }).filter((s) => !s.includes('{{')),
        (text) => renderString(text, ctx) === text,
      ),
      { numRuns: 200 },
    );
    const json = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.string({ unit: 'grapheme' }),
        fc.maxSafeInteger(),
        fc.boolean(),
        fc.constant(null),
        fc.array(tie('value'), { maxLength: 4 }),
        fc.dictionary(
          fc.string({ unit: 'grapheme' }).filter((k) => k !== '__proto__'),
          tie('value'),
          { maxKeys: 4 },
        ),
      ),
    })).value;
    fc.assert(
      fc.property(json, (value) => {
        expect(renderValue(`{{ ${JSON.stringify(value)} }}`, ctx)).toEqual(value);
      }),
      { numRuns: 200 },
    );
  });
});

describe('overrides', () => {
  const overrides = {
    env: { DATE: '{{ params.date }}', FIXED: 'x' },
    args: ['--n={{ params.limit }}', 'plain'],
    variables: { id: '{{ steps.extract.outputs.count }}' },
    headers: { 'X-Path': '{{ steps.extract.outputs.path }}', 'x y': '{{ 1 }}' },
    body: { query: ['{{ steps.extract.outputs.rows }}', 'n {{ params.limit }}'], '{{ keys }}': { deep: '{{ params.limit }}' } },
  };

  it('lists every template with its path', () => {
    expect(overrideTemplates(overrides)).toEqual([
      { path: 'overrides.env.DATE', expr: 'params.date' },
      { path: 'overrides.variables.id', expr: 'steps.extract.outputs.count' },
      { path: 'overrides.headers.X-Path', expr: 'steps.extract.outputs.path' },
      { path: 'overrides.headers["x y"]', expr: '1' },
      { path: 'overrides.args[0]', expr: 'params.limit' },
      { path: 'overrides.body.query[0]', expr: 'steps.extract.outputs.rows' },
      { path: 'overrides.body.query[1]', expr: 'params.limit' },
      { path: 'overrides.body["{{ keys }}"].deep', expr: 'params.limit' },
    ]);
  });

  it('renders every string value, never a key', () => {
    expect(renderOverrides(overrides, ctx)).toEqual({
      env: { DATE: '2026-12-01', FIXED: 'x' },
      args: ['--n=10', 'plain'],
      variables: { id: '5' },
      headers: { 'X-Path': '/tmp/x', 'x y': '1' },
      body: { query: [[1, 2, 3], 'n 10'], '{{ keys }}': { deep: 10 } },
    });
    expect(renderOverrides({ body: '{{ params.limit }}' }, ctx)).toEqual({ body: 10 });
    expect(renderOverrides({}, ctx)).toEqual({});
  });

  it('names the path of a failing template', () => {
    expect(errorOf(() => renderOverrides({ env: { A: '{{ steps.extract.outputs.nope }}' } }, ctx)).message).toMatch(
      /^overrides\.env\.A: "steps\.extract\.outputs\.nope": step extract has no output "nope"/,
    );
    expect(errorOf(() => overrideTemplates({ body: { q: ['{{ x'] } })).message).toBe(
      'overrides.body.q[0]: "{{ x": the "{{" at offset 0 is not closed with "}}"',
    );
  });
});
