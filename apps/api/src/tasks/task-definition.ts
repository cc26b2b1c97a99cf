import type { TaskEntity } from '@task-scheduler/db';
import { TaskResponse } from './dtos/task.response';
import { canonicalJson } from '../common/versioning';

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
