/**
 * The rules every input must meet before any DTO, service or database sees it (docs/api.md, "Input rules").
 * They are checked here once, for every route, so no field can forget them:
 * - text is well-formed Unicode without control characters other than tab, line feed and carriage
 *   return: PostgreSQL cannot store U+0000 in text or jsonb nor an unpaired surrogate in jsonb, and the
 *   other control characters are refused too so that "text" means one thing everywhere;
 * - JSON bodies nest at most {@link MAX_BODY_DEPTH} levels (class-transformer and class-validator recurse,
 *   so depth is what could break the process); their size is bounded in bytes only, by `BODY_LIMIT_BYTES`
 *   (express.json): opaque payloads such as `http.body` or a trigger's `body` may be a large JSON array, and
 *   a count of values would refuse them although they are within the byte limit. The structured fields have
 *   their own bounds (array sizes, string lengths, `metadata` in bytes); the walk here is linear in the body;
 * - no object key is `__proto__`, `constructor` or `prototype` (class-transformer drops or misreads them).
 *
 * The walk is iterative: class-transformer and class-validator recurse, so a body nested 10,000 levels
 * must be refused before they run, by code that does not recurse itself.
 */
import type { ErrorDetail } from './api-error';

export const MAX_BODY_DEPTH = 32;
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

// C0 controls except \t \n \r, DEL, and UTF-16 surrogates that are not part of a pair.
// eslint-disable-next-line no-control-regex -- matching control characters is this rule's job
const BAD_TEXT = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function codePoint(c: string): string {
  return `U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Why a string breaks the text rule, or undefined when it is fine. */
export function textProblem(s: string): string | undefined {
  const m = BAD_TEXT.exec(s);
  if (!m) return undefined;
  const c = m[0];
  if (c.length === 1 && c.charCodeAt(0) >= 0xd800 && c.charCodeAt(0) <= 0xdfff) {
    return `contains an unpaired UTF-16 surrogate (${codePoint(c)}); text must be well-formed Unicode`;
  }
  return `contains the control character ${codePoint(c)}; the only control characters allowed are tab, line feed and carriage return`;
}

/** `a.b[2].c` — the dotted path of the property `key` of the value at `parent`. */
export function pathOf(parent: string, key: string | number): string {
  if (typeof key === 'number') return `${parent}[${key}]`;
  return parent ? `${parent}.${key}` : key;
}

export interface JsonBounds {
  maxDepth: number;
  /** At most this many values in all (containers and scalars); no limit when left out. */
  maxValues?: number;
}

/**
 * The first way `value` breaks the input rules, as an error detail naming the field (`root` is the path of
 * `value` itself), or undefined. Depth counts containers: `{}` and `[]` are depth 1, `{"a":{}}` depth 2.
 */
export function jsonProblem(value: unknown, root: string, bounds: JsonBounds): ErrorDetail | undefined {
  const stack: [unknown, string, number][] = [[value, root, 0]];
  let values = 0;
  while (stack.length > 0) {
    const [v, path, depth] = stack.pop()!;
    if (bounds.maxValues !== undefined && ++values > bounds.maxValues) {
      return { field: root || 'body', message: `${root || 'the body'} holds more than ${bounds.maxValues} values` };
    }
    if (typeof v === 'string') {
      const problem = textProblem(v);
      if (problem) return { field: path || 'body', message: `${path || 'the body'} ${problem}` };
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    if (depth + 1 > bounds.maxDepth) {
      // The top-level field it is under: the full path would be as long as the nesting.
      const field = root || /^[^.[]*/.exec(path)![0] || 'body';
      return { field, message: `${field === 'body' ? 'the body' : field} is nested more than ${bounds.maxDepth} levels deep` };
    }
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], pathOf(path, i), depth + 1]);
      continue;
    }
    for (const key of Object.keys(v)) {
      if (FORBIDDEN_KEYS.has(key)) {
        const field = pathOf(path, key);
        return { field, message: `${field}: the field name ${key} is not allowed` };
      }
      const problem = textProblem(key);
      if (problem) return { field: path || 'body', message: `a field name in ${path || 'the body'} ${problem}` };
      stack.push([(v as Record<string, unknown>)[key], pathOf(path, key), depth + 1]);
    }
  }
  return undefined;
}

/** Depth of a JSON value (counting containers), computed without recursion; stops early past `maxDepth`. */
export function jsonDepth(value: unknown, maxDepth: number): number {
  const stack: [unknown, number][] = [[value, 0]];
  let deepest = 0;
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    const d = depth + 1;
    deepest = Math.max(deepest, d);
    if (d > maxDepth) return d;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, d]);
  }
  return deepest;
}
