/**
 * Pipeline expressions: CEL (the `@marcbachmann/cel-js` interpreter, never
 * `eval`) over `{ steps: { <key>: { status, outputs } }, params, item, itemIndex }`,
 * and `{{ expression }}` templates in the string values of a step's overrides.
 * The API checks expressions with {@link checkExpression} and
 * {@link overrideTemplates}; the worker evaluates them when it prepares a step.
 *
 * Values: CEL tells `int` from `double` and never mixes them in arithmetic, so
 * a JSON number that is a safe integer enters CEL as an `int` (`count + 1`,
 * `count > 3` work for a `count` of JSON `5`), any other number as a `double`
 * (`ratio * 2.0`; comparisons across int and double work). Strings are never
 * read as numbers: a `name=value` output line is always a string, so
 * `steps.a.outputs.count > 3` on a line `count=5` is an error that says to
 * write `int(steps.a.outputs.count) > 3` (and `==` between a string and a
 * number is false, as CEL defines it). Results come back as JSON values:
 * ints as numbers (beyond ±2^53 is an error), maps as plain objects,
 * timestamps as ISO strings, durations as CEL writes them (`90s`); bytes and
 * types are refused, and so is a result of more than 100,000 values or 1 MiB of
 * text, or text with a NUL character or a lone UTF-16 surrogate (PostgreSQL
 * cannot store either in jsonb or text). Evaluation runs on the worker's event
 * loop, so `matches()` (a backtracking RegExp in this library) is refused,
 * macros do not nest, and a caller may give a context a `deadline` past which
 * no further expression is evaluated ({@link EvaluationDeadlineExceeded}).
 *
 * Templates: `{{ expr }}`, whitespace inside the braces optional. The end of a
 * template is the first `}}` outside CEL string literals and map braces, so
 * `{{ {"a": 1} }}` and `{{ "}}" }}` work, and a literal `{{` is written
 * `{{ "{{" }}`. A string that is exactly one template (nothing around it,
 * not even spaces) keeps the value's type where the field takes any JSON;
 * otherwise each value is stringified: a string as is, numbers and booleans
 * via `String`, null as '', lists and maps as JSON.
 */
import { Environment, EvaluationError, Optional, ParseError } from '@marcbachmann/cel-js';
import type { ASTNode } from '@marcbachmann/cel-js';
import { PIPELINE_LIMITS } from '@task-scheduler/contracts';
import type { RunOverrides, StepOutcome } from '@task-scheduler/contracts';

/** An expression or template that cannot be parsed or evaluated; the message names it. */
export class ExpressionError extends Error {
  constructor(
    /** The expression (or the template text) at fault. */
    readonly expression: string,
    /** What is wrong, without the expression. */
    readonly reason: string,
    /** Where it sits in a step's overrides (`overrides.env.DATE`), when known. */
    readonly path?: string,
  ) {
    // The reason may quote a value or a library message about one: bounded, like the quoted expression.
    super(`${path ? `${path}: ` : ''}${quote(expression)}: ${truncated(reason, 600)}`);
    this.name = 'ExpressionError';
  }
}

export interface ExpressionContext {
  steps: Record<string, { status: StepOutcome; outputs: unknown }>;
  params: Record<string, unknown>;
  item?: unknown;
  itemIndex?: number;
  /** Epoch milliseconds after which evaluating another expression throws {@link EvaluationDeadlineExceeded}. */
  deadline?: number;
}

/**
 * The context's deadline passed before an expression was evaluated. Not an
 * {@link ExpressionError}: no expression is wrong, there are too many or they
 * are too slow together, and the caller says so in its own terms.
 */
export class EvaluationDeadlineExceeded extends Error {
  constructor() {
    super('the expressions took longer than their deadline to evaluate');
    this.name = 'EvaluationDeadlineExceeded';
  }
}

export type ExpressionReference = { kind: 'step'; key: string } | { kind: 'param'; name: string } | { kind: 'item' };

const env = new Environment({ enableOptionalTypes: true, homogeneousAggregateLiterals: false })
  .registerVariable('steps', 'map')
  .registerVariable('params', 'map')
  .registerVariable('item', 'dyn')
  .registerVariable('itemIndex', 'int');

/** Macros whose first argument names a variable bound in the others (`rows.all(r, r > 0)`). */
const BINDING_MACROS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);

/**
 * Nested macros multiply: two nested `exists` over the 1000 outputs of a
 * fan-out are 10^6 steps (about 250 ms here), evaluated once per item of a
 * fan-out, on the event loop of the worker every tenant's pipelines share;
 * nested `cel.bind`s double a value each. So a macro's body holds no other
 * macro; chained ones (`rows.map(r, r.n).filter(n, n > 0)`) stay linear and
 * are allowed.
 */
const MAX_MACRO_NESTING = 1;

/** Bounds of one result: a few shared references must not expand into gigabytes of JSON. */
const MAX_RESULT_VALUES = 100_000;
const MAX_RESULT_CHARS = 1024 * 1024;

// The library runs matches() with JavaScript's backtracking RegExp, not RE2 as CEL specifies: a pattern
// like (a+)+$ over an output would block the worker for minutes.
const MATCHES_REFUSED = 'matches() is not available (regular expressions can run unbounded); use contains, startsWith or endsWith';

interface Compiled {
  evaluate: (ctx: Record<string, unknown>) => unknown;
  references: ExpressionReference[];
}

// Expressions repeat across the items of a fan-out and across runs: parse each once.
const compiled = new Map<string, Compiled>();
const MAX_COMPILED = 1000;

function compile(expr: string): Compiled {
  const hit = compiled.get(expr);
  if (hit) return hit;
  if (expr.length > PIPELINE_LIMITS.maxExpressionLength) {
    throw new ExpressionError(expr, `longer than ${PIPELINE_LIMITS.maxExpressionLength} characters`);
  }
  if (expr.trim() === '') throw new ExpressionError(expr, 'the expression is empty');
  let parsed: ReturnType<Environment['parse']>;
  try {
    parsed = env.parse(expr);
  } catch (err) {
    throw new ExpressionError(expr, celReason(err));
  }
  const references = referencesOf(expr, parsed.ast);
  let checked: ReturnType<typeof parsed.check>;
  try {
    checked = parsed.check();
  } catch (err) {
    throw new ExpressionError(expr, celReason(err));
  }
  if (!checked.valid && checked.error) throw new ExpressionError(expr, readableSummary(checked.error));
  const entry: Compiled = { evaluate: (ctx) => parsed(ctx), references };
  if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value as string);
  compiled.set(expr, entry);
  return entry;
}

/**
 * Parses (and type-checks) an expression without evaluating it and returns
 * the names it reads: `steps.<key>` (whatever it reads below), `params.<name>`,
 * `item`/`itemIndex`. Any other name, or `steps`/`params` without a literal name,
 * is an {@link ExpressionError}.
 */
export function checkExpression(expr: string): ExpressionReference[] {
  return compile(expr).references.map((r) => ({ ...r }));
}

function referencesOf(expr: string, ast: ASTNode): ExpressionReference[] {
  const found = new Map<string, ExpressionReference>();
  const add = (r: ExpressionReference): void => {
    found.set(r.kind === 'step' ? `s:${r.key}` : r.kind === 'param' ? `p:${r.name}` : 'i', r);
  };
  let nesting = 0;
  const nested = (run: () => void): void => {
    if (++nesting > MAX_MACRO_NESTING) {
      throw new ExpressionError(
        expr,
        'a macro (all, exists, exists_one, map, filter, cel.bind) cannot sit inside another; chain them instead, as in l.map(x, x.n).filter(n, n > 0)',
      );
    }
    run();
    nesting--;
  };
  const visit = (node: unknown, bound: ReadonlySet<string>): void => {
    if (Array.isArray(node)) {
      for (const n of node) visit(n, bound);
      return;
    }
    if (!isNode(node)) return;
    const { op, args } = node;
    if (op === 'id') {
      const name = args as string;
      if (bound.has(name)) return;
      if (name === 'item' || name === 'itemIndex') return add({ kind: 'item' });
      if (name === 'steps' || name === 'params') throw new ExpressionError(expr, needsName(name));
      throw new ExpressionError(expr, `unknown name ${name}; use steps, params, item or itemIndex`);
    }
    if (op === '.' || op === '.?' || op === '[]' || op === '[?]') {
      const [target, key] = args as [unknown, unknown];
      const root = isNode(target) && target.op === 'id' ? (target.args as string) : null;
      if ((root === 'steps' || root === 'params') && !bound.has(root)) {
        const name = staticKey(op, key);
        if (name === null) throw new ExpressionError(expr, needsName(root));
        add(root === 'steps' ? { kind: 'step', key: name } : { kind: 'param', name });
        return;
      }
      visit(target, bound);
      if (op === '[]' || op === '[?]') visit(key, bound);
      return;
    }
    if (op === 'rcall') {
      const [method, receiver, callArgs] = args as [string, unknown, unknown[]];
      const isBind = method === 'bind' && isNode(receiver) && receiver.op === 'id' && receiver.args === 'cel';
      if (!isBind) visit(receiver, bound);
      const first = callArgs[0];
      if ((isBind || BINDING_MACROS.has(method)) && isNode(first) && first.op === 'id' && callArgs.length >= 2) {
        const inner = new Set(bound).add(first.args as string);
        // cel.bind(v, value, body): `v` is bound in `body` only.
        if (isBind) {
          visit(callArgs[1], bound);
          nested(() => visit(callArgs.slice(2), inner));
        } else {
          nested(() => visit(callArgs.slice(1), inner));
        }
        return;
      }
      if (method === 'matches') throw new ExpressionError(expr, MATCHES_REFUSED);
      visit(callArgs, bound);
      return;
    }
    if (op === 'call') {
      if ((args as [string])[0] === 'matches') throw new ExpressionError(expr, MATCHES_REFUSED);
      visit((args as [string, unknown[]])[1], bound);
      return;
    }
    if (op === 'value') return;
    if (op === 'map') {
      // The library builds map literals as plain objects, where this key would set the prototype.
      for (const [k] of args as [unknown, unknown][]) {
        if (isNode(k) && k.op === 'value' && k.args === '__proto__') {
          throw new ExpressionError(expr, 'a map literal cannot have the key "__proto__"');
        }
      }
    }
    // Operators, lists ([a, b]) and maps ([[k, v], …]): every operand is an expression.
    visit(args, bound);
  };
  visit(ast, new Set());
  return [...found.values()];
}

// Validation must know which steps and parameters an expression reads, so it names them literally.
function needsName(root: 'steps' | 'params'): string {
  return `${root} needs a literal name after it, as in ${root === 'steps' ? 'steps.extract' : 'params.date'}`;
}

function isNode(x: unknown): x is { op: string; args: unknown; start: number; end: number } {
  return typeof x === 'object' && x !== null && typeof (x as { op?: unknown }).op === 'string' && 'args' in x;
}

function staticKey(op: string, key: unknown): string | null {
  if (op === '.' || op === '.?') return key as string;
  return isNode(key) && key.op === 'value' && typeof key.args === 'string' ? key.args : null;
}

// ---------------------------------------------------------------- evaluation

/** Evaluates `expr` to a boolean; any other result is an {@link ExpressionError}. */
export function evaluateCondition(expr: string, ctx: ExpressionContext): boolean {
  const value = evaluateValue(expr, ctx);
  if (typeof value !== 'boolean') {
    throw new ExpressionError(expr, `must be true or false, got ${describe(value)}`);
  }
  return value;
}

/** Evaluates `expr` to a JSON value (ints as numbers, maps as objects). */
export function evaluateValue(expr: string, ctx: ExpressionContext): unknown {
  if (ctx.deadline !== undefined && Date.now() > ctx.deadline) throw new EvaluationDeadlineExceeded();
  const { evaluate, references } = compile(expr);
  const celCtx = celContext(ctx, references);
  let result: unknown;
  try {
    result = evaluate(celCtx);
  } catch (err) {
    throw new ExpressionError(expr, evaluationReason(expr, err, celCtx));
  }
  try {
    return fromCel(result, { values: MAX_RESULT_VALUES, chars: MAX_RESULT_CHARS });
  } catch (err) {
    throw new ExpressionError(expr, (err as Error).message);
  }
}

/**
 * The CEL view of `ctx`, holding only the steps the expression names (it can
 * read no others). A fan-out evaluates its templates once per item against the
 * same step outputs (up to 1000 × 64 KiB for an upstream fan-out), so each
 * converted step and parameter set is kept for as long as its object lives:
 * contexts are treated as immutable.
 */
function celContext(ctx: ExpressionContext, references: ExpressionReference[]): Record<string, unknown> {
  const steps = new Map<string, unknown>();
  for (const r of references) {
    if (r.kind === 'step' && Object.hasOwn(ctx.steps, r.key)) steps.set(r.key, converted(ctx.steps[r.key]));
  }
  const out: Record<string, unknown> = { steps, params: converted(ctx.params) };
  if (ctx.item !== undefined) out.item = converted(ctx.item);
  if (ctx.itemIndex !== undefined) out.itemIndex = BigInt(ctx.itemIndex);
  return out;
}

const conversions = new WeakMap<object, unknown>();

function converted(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return toCel(value);
  if (!conversions.has(value)) conversions.set(value, toCel(value));
  return conversions.get(value);
}

/** JSON → CEL: safe integers become `int`; objects become Maps (a key like `__proto__` stays a key). */
function toCel(value: unknown): unknown {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? BigInt(value) : value;
  if (Array.isArray(value)) return value.map(toCel);
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [k, toCel(v)]));
  if (typeof value === 'object' && value !== null) {
    return new Map(Object.entries(value).map(([k, v]) => [k, toCel(v)]));
  }
  return value ?? null;
}

/** CEL → JSON, within `budget` (decremented as it goes). */
function fromCel(value: unknown, budget: { values: number; chars: number }): unknown {
  if (--budget.values < 0) throw new Error(`the result has more than ${MAX_RESULT_VALUES} values`);
  const json = (v: unknown): unknown => fromCel(v, budget);
  if (typeof value === 'bigint') {
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new Error(`the result ${value} is too large for a JSON number (at most 2^53 - 1)`);
    }
    return Number(value);
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`the result ${value} is not a JSON number`);
    return value;
  }
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') {
    budget.chars -= value.length;
    if (budget.chars < 0) throw new Error(`the result holds more than ${MAX_RESULT_CHARS} characters of text`);
    return storable(value);
  }
  if (typeof value === 'boolean') return value;
  if (Array.isArray(value)) return value.map(json);
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [storable(String(k)), json(v)]));
  if (value instanceof Optional) return value.hasValue() ? json(value.value()) : null;
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) throw new Error('the result is bytes; convert it with string(...)');
  const kind = (value as object).constructor?.name;
  if (kind === 'UnsignedInt') return json(BigInt(String(value)));
  if (kind === 'Duration') return String(value);
  if (kind === 'Object' || kind === undefined) {
    return Object.fromEntries(Object.entries(value as object).map(([k, v]) => [storable(k), json(v)]));
  }
  throw new Error(`the result is a CEL ${String(value)}, not a JSON value`);
}

/**
 * `text`, unless PostgreSQL could not store it: jsonb refuses `\u0000`
 * (22P05) and text a lone surrogate (it is no UTF-8). Refused here, the step
 * fails with a reason instead of its activity retrying a write that cannot work.
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function storable(text: string): string {
  if (text.includes('\u0000')) throw new Error('gives text with a NUL character, which cannot be stored');
  if (LONE_SURROGATE.test(text)) throw new Error('gives text with a lone UTF-16 surrogate (half a character), which cannot be stored');
  return text;
}

/** A readable reason for an evaluation error: a missing key says what is there. */
function evaluationReason(expr: string, err: unknown, celCtx: Record<string, unknown>): string {
  if (!(err instanceof EvaluationError)) return celReason(err);
  const node = err.node as unknown;
  if (err.code === 'unknown_variable' && isNode(node) && (node.args === 'item' || node.args === 'itemIndex')) {
    return `${node.args as string} is only set in a step with forEach`;
  }
  if (err.code === 'no_such_key' && isNode(node) && (node.op === '.' || node.op === '[]')) {
    return at(expr, node, missingKey(node, celCtx));
  }
  if (err.code === 'index_out_of_bounds' && isNode(node)) {
    return at(expr, node, err.summary.replace(/^No such key: /, ''));
  }
  return readableSummary(err);
}

/** `reason`, prefixed by the part of `expr` it is about unless that is all of it. */
function at(expr: string, node: { start: number; end: number }, reason: string): string {
  const part = expr.slice(node.start, node.end);
  return part.trim() === expr.trim() ? reason : `${part}: ${reason}`;
}

function missingKey(node: { op: string; args: unknown }, celCtx: Record<string, unknown>): string {
  const [target, keyNode] = node.args as [unknown, unknown];
  const key = node.op === '.' ? (keyNode as string) : isNode(keyNode) && keyNode.op === 'value' ? keyNode.args : null;
  const path = staticPath(target);
  const container = path ? lookup(celCtx, path) : undefined;
  const keyText = key === null ? 'the key' : JSON.stringify(typeof key === 'bigint' ? Number(key) : key);
  if (path?.[0] === 'steps') {
    if (path.length === 1) return `no step ${keyText} upstream`;
    const step = String(path[1]);
    if (path.length === 2) return `step ${step} has no field ${keyText} (it has: status, outputs)`;
    if (path.length === 3 && path[2] === 'outputs') {
      if (container === null) return `step ${step} has no outputs`;
      if (Array.isArray(container)) {
        return `the outputs of step ${step} are a list (one entry per item), e.g. steps.${step}.outputs[0].${String(key)}`;
      }
      return `step ${step} has no output ${keyText}${has(container)}`;
    }
  }
  if (path?.[0] === 'params' && path.length === 1) return `no parameter ${keyText}${has(container)}`;
  if (container instanceof Map || container === undefined) return `no key ${keyText}${has(container)}`;
  return `no key ${keyText}: the value is ${celKind(container)}`;
}

function celKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'bigint') return 'an int';
  if (typeof value === 'number') return 'a double';
  return `a ${typeof value}`;
}

function has(container: unknown): string {
  if (!(container instanceof Map)) return '';
  const keys = [...container.keys()].map(String);
  if (keys.length === 0) return ' (it has none)';
  const shown = keys.slice(0, 20).join(', ');
  return ` (it has: ${shown}${keys.length > 20 ? ', …' : ''})`;
}

/** The keys of `a.b["c"][0]` from its root name, or null when a step of it is computed. */
function staticPath(node: unknown): (string | bigint)[] | null {
  if (!isNode(node)) return null;
  if (node.op === 'id') return [node.args as string];
  if (node.op !== '.' && node.op !== '[]') return null;
  const [target, key] = node.args as [unknown, unknown];
  const head = staticPath(target);
  if (!head) return null;
  if (node.op === '.') return [...head, key as string];
  if (isNode(key) && key.op === 'value' && (typeof key.args === 'string' || typeof key.args === 'bigint')) {
    return [...head, key.args];
  }
  return null;
}

function lookup(root: Record<string, unknown>, path: (string | bigint)[]): unknown {
  let value: unknown = root[path[0] as string];
  for (const key of path.slice(1)) {
    if (value instanceof Map) value = value.get(key);
    else if (Array.isArray(value) && typeof key === 'bigint') value = value[Number(key)];
    else return undefined;
  }
  return value;
}

function celReason(err: unknown): string {
  if (err instanceof ParseError || err instanceof EvaluationError) return readableSummary(err);
  if (err instanceof Error && typeof (err as { summary?: unknown }).summary === 'string')
    return readableSummary(err as Error & { summary: string });
  return err instanceof Error ? err.message : String(err);
}

/** The library's one-line summary, with a hint where a string meets a number. */
function readableSummary(err: Error & { summary?: string }): string {
  const summary = err.summary ?? err.message.split('\n')[0];
  const overload = /^no such overload: (?:dyn<(\w+)>|(\w+)) (\S+) (?:dyn<(\w+)>|(\w+))$/.exec(summary);
  if (!overload) return summary;
  const left = overload[1] ?? overload[2];
  const right = overload[4] ?? overload[5];
  const op = overload[3];
  const numeric = (t: string): boolean => t === 'int' || t === 'double' || t === 'uint';
  let hint = '';
  if ((left === 'string' && numeric(right)) || (right === 'string' && numeric(left))) {
    hint = '; outputs written as name=value lines are strings: convert with int(...) or double(...)';
  } else if (numeric(left) && numeric(right)) {
    hint = '; ints and doubles do not mix in arithmetic: convert with double(...) or int(...)';
  }
  return `cannot apply ${op} to ${left} and ${right}${hint}`;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  return `${typeof value} ${truncated(JSON.stringify(value), MAX_QUOTED_VALUE)}`;
}

/**
 * Longest value an error quotes: the message becomes the step's error, in the
 * workflow's history, the API and the alert payload, and a value may be 1 MiB.
 */
const MAX_QUOTED_VALUE = 200;

function truncated(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

function quote(text: string): string {
  return `"${truncated(text, 120)}"`;
}

// ---------------------------------------------------------------- templates

interface TemplatePart {
  /** Offsets of `{{` and just past `}}`. */
  start: number;
  end: number;
  expr: string;
}

/** Splits out the `{{ … }}` of a string; an unclosed `{{` is an {@link ExpressionError}. */
function templateParts(text: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let from = 0;
  for (;;) {
    const start = text.indexOf('{{', from);
    if (start < 0) return parts;
    const close = templateEnd(text, start + 2);
    if (close < 0) throw new ExpressionError(text, `the "{{" at offset ${start} is not closed with "}}"`);
    const expr = text.slice(start + 2, close).trim();
    if (expr === '') throw new ExpressionError(text, `the template at offset ${start} is empty`);
    parts.push({ start, end: close + 2, expr });
    from = close + 2;
  }
}

/** Offset of the `}}` ending a template whose expression starts at `i`, or -1. */
function templateEnd(text: string, i: number): number {
  let depth = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"' || c === "'") {
      i = stringEnd(text, i);
      continue;
    }
    if (c === '/' && text[i + 1] === '/') {
      // A CEL comment runs to the end of the line (or here of the template); a quote in it opens no string.
      const eol = text.indexOf('\n', i);
      const close = text.indexOf('}}', i);
      if (close >= 0 && (eol < 0 || close < eol)) return close;
      if (eol < 0) return -1;
      i = eol;
      continue;
    }
    if (c === '{') depth++;
    else if (c === '}') {
      if (depth === 0 && text[i + 1] === '}') return i;
      if (depth > 0) depth--;
    }
    i++;
  }
  return -1;
}

/** Offset just past the CEL string literal opening at `i` (raw and triple-quoted ones too). */
function stringEnd(text: string, i: number): number {
  const q = text[i];
  const prefix = /(?<![\w.])[rRbB]{1,2}$/.exec(text.slice(Math.max(0, i - 3), i))?.[0] ?? '';
  const raw = /[rR]/.test(prefix);
  const delim = text.startsWith(q.repeat(3), i) ? q.repeat(3) : q;
  let j = i + delim.length;
  while (j < text.length) {
    if (!raw && text[j] === '\\') {
      j += 2;
      continue;
    }
    if (text.startsWith(delim, j)) return j + delim.length;
    j++;
  }
  return text.length;
}

/** The expressions of the `{{ … }}` templates in `text`, in order. */
export function templatesIn(text: string): string[] {
  return templateParts(text).map((p) => p.expr);
}

/** Whether `text` is exactly one template, with nothing (not even spaces) around it. */
export function isWholeTemplate(text: string): boolean {
  if (!text.startsWith('{{')) return false;
  const close = templateEnd(text, 2);
  return close >= 0 && close + 2 === text.length && text.slice(2, close).trim() !== '';
}

/** Replaces every template by its stringified value. */
export function renderString(text: string, ctx: ExpressionContext): string {
  const parts = templateParts(text);
  if (parts.length === 0) return text;
  let out = '';
  let at = 0;
  for (const p of parts) {
    out += text.slice(at, p.start) + stringify(evaluateValue(p.expr, ctx));
    at = p.end;
  }
  return out + text.slice(at);
}

/** A whole template keeps its value's type; any other text is {@link renderString}. */
export function renderValue(text: string, ctx: ExpressionContext): unknown {
  if (isWholeTemplate(text)) return evaluateValue(templatesIn(text)[0], ctx);
  return renderString(text, ctx);
}

function stringify(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return '';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

// ---------------------------------------------------------------- overrides

type Visitor = (text: string, path: string, keepsType: boolean) => unknown;

/** Maps every string value of `o` (never a key) through `fn`, naming its path. */
function mapStrings(o: RunOverrides, fn: Visitor): RunOverrides {
  const out: RunOverrides = { ...o };
  const record = (field: 'env' | 'variables' | 'headers'): void => {
    const values = o[field];
    if (!values) return;
    out[field] = Object.fromEntries(
      Object.entries(values).map(([k, v]) => [k, typeof v === 'string' ? (fn(v, `overrides.${field}${member(k)}`, false) as string) : v]),
    );
  };
  record('env');
  record('variables');
  record('headers');
  if (o.args) out.args = o.args.map((a, i) => (typeof a === 'string' ? (fn(a, `overrides.args[${i}]`, false) as string) : a));
  if (o.body !== undefined) out.body = mapJson(o.body, 'overrides.body', fn);
  return out;
}

function mapJson(value: unknown, path: string, fn: Visitor): unknown {
  if (typeof value === 'string') return fn(value, path, true);
  if (Array.isArray(value)) return value.map((v, i) => mapJson(v, `${path}[${i}]`, fn));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapJson(v, `${path}${member(k)}`, fn)]));
  }
  return value;
}

function member(key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

function atPath<T>(path: string, run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (err instanceof ExpressionError && err.path === undefined) throw new ExpressionError(err.expression, err.reason, path);
    throw err;
  }
}

/**
 * Renders every template in the string values of `o`: env values, args,
 * variables and headers become strings; a body string that is one whole
 * template takes the value's type. Errors name the path (`overrides.env.DATE`).
 */
export function renderOverrides(o: RunOverrides, ctx: ExpressionContext): RunOverrides {
  return mapStrings(o, (text, path, keepsType) => atPath(path, () => (keepsType ? renderValue(text, ctx) : renderString(text, ctx))));
}

/** Every template of `o` with its path, for validation; an unclosed `{{` throws (naming the path). */
export function overrideTemplates(o: RunOverrides): { path: string; expr: string }[] {
  const found: { path: string; expr: string }[] = [];
  mapStrings(o, (text, path) => {
    for (const expr of atPath(path, () => templatesIn(text))) found.push({ path, expr });
    return text;
  });
  return found;
}
