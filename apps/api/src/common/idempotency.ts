import { createHash } from 'node:crypto';
import { ApiError, ErrorCode, fieldError } from './api-error';
import { canonicalJson } from './versioning';

/**
 * `Idempotency-Key` of the routes that start runs (task runs and pipeline runs): a repeat of a request
 * returns what the first one created, also under concurrent repeats (a unique index on the key decides), and
 * a different request with the same key is refused.
 */

/** Refuses a key that is not 1-255 visible ASCII characters. */
export function checkIdempotencyKey(key: string | undefined): void {
  if (key !== undefined && !/^[\x21-\x7e]{1,255}$/.test(key)) {
    throw fieldError(ErrorCode.IDEMPOTENCY_KEY_INVALID, 'idempotency-key', 'must be 1-255 visible ASCII characters');
  }
}

/** What a repeat must send again to be the same request: a hash of its parameters, key order aside. */
export function requestHash(params: unknown): string {
  return createHash('sha256').update(canonicalJson(params)).digest('hex');
}

/** A record an idempotent request created: a run (`runId`) or a pipeline run (`pipelineRunId`). */
export interface IdempotentRecord {
  id: string;
  requestHash: string | null;
}

export interface IdempotentStart<T extends IdempotentRecord> {
  /** Checked with {@link checkIdempotencyKey}. */
  key: string | undefined;
  requestHash: string;
  /** How errors name the record, and the detail field that carries its id. */
  noun: 'run' | 'pipeline run';
  idField: 'runId' | 'pipelineRunId';
  find(key: string): Promise<T | null>;
  /** Creates the record; null when an insert with the same key won the race (the unique index ignored this one). */
  start(): Promise<T | null>;
}

/** Returns the record an earlier request with the key created (if it was the same request), else starts one. */
export async function startIdempotently<T extends IdempotentRecord>(o: IdempotentStart<T>): Promise<{ run: T; created: boolean }> {
  if (o.key) {
    const existing = await o.find(o.key);
    if (existing) return { run: sameRequest(existing, o), created: false };
  }
  const run = await o.start();
  if (run) return { run, created: true };
  const winner = o.key ? await o.find(o.key) : null;
  if (!winner) throw new Error(`idempotent insert ignored but no ${o.noun} found`);
  return { run: sameRequest(winner, o), created: false };
}

function sameRequest<T extends IdempotentRecord>(existing: T, o: IdempotentStart<T>): T {
  if (existing.requestHash !== null && existing.requestHash !== o.requestHash) {
    throw new ApiError(
      ErrorCode.IDEMPOTENCY_KEY_REUSED,
      `this Idempotency-Key was already used for ${o.noun} ${existing.id} with different parameters; use a new key for a new request`,
      [{ field: 'idempotency-key', message: `already used for ${o.noun} ${existing.id}`, [o.idField]: existing.id }],
    );
  }
  return existing;
}
