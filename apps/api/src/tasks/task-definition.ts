import type { TaskEntity } from '@task-scheduler/db';
import { TaskResponse } from './dtos/task.response';

/** A task's definition as its versions record it: what GET shows, secret values as `***`, without id, version and times. */
export type TaskDefinition = Omit<TaskResponse, 'id' | 'version' | 'createdAt' | 'updatedAt'>;

export function definitionOf(t: TaskEntity): TaskDefinition {
  const definition: Partial<TaskResponse> = { ...TaskResponse.from(t) };
  delete definition.id;
  delete definition.version;
  delete definition.createdAt;
  delete definition.updatedAt;
  return definition as TaskDefinition;
}

/** JSON with object keys sorted and undefined members left out, so equal values compare equal whatever their key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    return `{${Object.keys(obj)
      .filter((k) => obj[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/**
 * The fields that differ between two definitions, sorted: top-level names,
 * and inside the executor block (`shell`, `http`) of an unchanged executor
 * its own fields (`shell.script`), which is what a reader of the history
 * wants to know. Equal definitions give none.
 */
export function changedFields(before: TaskDefinition, after: TaskDefinition): string[] {
  const out: string[] = [];
  const a = before as unknown as Record<string, unknown>;
  const b = after as unknown as Record<string, unknown>;
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (canonicalJson(a[key]) === canonicalJson(b[key])) continue;
    const block = (key === 'shell' || key === 'http') && before.executor === after.executor;
    if (!block) {
      out.push(key);
      continue;
    }
    const x = (a[key] ?? {}) as Record<string, unknown>;
    const y = (b[key] ?? {}) as Record<string, unknown>;
    for (const sub of new Set([...Object.keys(x), ...Object.keys(y)])) {
      if (canonicalJson(x[sub]) !== canonicalJson(y[sub])) out.push(`${key}.${sub}`);
    }
  }
  return out.sort();
}

/**
 * Parses `If-Match` against the task's version (its ETag is `"<version>"`).
 * Absent: no precondition. `*` matches any existing task; otherwise one of
 * the listed entity tags must be the current one. The comparison is strong
 * (RFC 9110 §13.1.1): a weak tag `W/"…"` never matches. Returns whether it holds.
 */
export function ifMatchHolds(header: string | undefined, version: number): boolean {
  if (header === undefined) return true;
  const text = header.trim();
  if (text === '*') return true;
  return text
    .split(',')
    .map((t) => t.trim())
    .some((t) => t === `"${version}"`);
}

/** The ETag of a task version. */
export function etagOf(version: number): string {
  return `"${version}"`;
}
