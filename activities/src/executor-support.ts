import { ApplicationFailure } from '@temporalio/activity';
import type { CapturedStream } from '@task-scheduler/contracts';
import { maskSecrets, openSecrets, secretValuesOf } from '@task-scheduler/core';
import type { TaskSecretValues } from '@task-scheduler/core';

/** Failure type when a task's secrets cannot be decrypted by this worker (wrong or missing SECRETS_KEY). */
export const SECRETS_UNAVAILABLE = 'SecretsUnavailable';

/**
 * Decrypts a task's sealed secrets for one attempt. A worker without the key,
 * or with a different one, fails the attempt without retry: retrying on the
 * same misconfiguration cannot succeed.
 */
export function unsealTaskSecrets(sealed: string | null | undefined, key: Buffer | null, tenantId: string): TaskSecretValues {
  if (!sealed) return {};
  if (!key) throw ApplicationFailure.nonRetryable('the task has secrets but this worker has no SECRETS_KEY', SECRETS_UNAVAILABLE);
  try {
    return openSecrets(sealed, key, tenantId);
  } catch {
    throw ApplicationFailure.nonRetryable("the task's secrets cannot be decrypted with this worker's SECRETS_KEY", SECRETS_UNAVAILABLE);
  }
}

/** Masks secret values in captured output before it is stored or returned. */
export function maskStream(stream: CapturedStream, secrets: readonly string[]): CapturedStream {
  return secrets.length === 0 ? stream : { ...stream, text: maskSecrets(stream.text, secrets) };
}

export { maskSecrets, secretValuesOf };
