import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** Secret values of a task, by where the executor puts them. */
export interface TaskSecretValues {
  /** shell: environment variables. */
  env?: Record<string, string>;
  /** http: request headers. */
  headers?: Record<string, string>;
}

const VERSION = 'v1';

/** Parses SECRETS_KEY: 32 bytes, given as 64 hex characters or base64. */
export function parseSecretsKey(text: string): Buffer {
  const key = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
  if (key.length !== 32) throw new Error('SECRETS_KEY must be 32 bytes, as 64 hex characters or base64');
  return key;
}

/**
 * Encrypts secret values with AES-256-GCM. The result (`v1.<iv>.<tag>.<ciphertext>`,
 * base64url parts) is what the database and workflow histories hold; the tenant
 * id is bound as associated data, so a blob copied to another tenant's task
 * does not decrypt.
 */
export function sealSecrets(values: TaskSecretValues, key: Buffer, tenantId: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(tenantId));
  const ct = Buffer.concat([cipher.update(JSON.stringify(values), 'utf8'), cipher.final()]);
  return [VERSION, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
}

/** Decrypts what {@link sealSecrets} produced; throws on a wrong key, tenant or a tampered blob. */
export function openSecrets(sealed: string, key: Buffer, tenantId: string): TaskSecretValues {
  const [version, iv, tag, ct] = sealed.split('.');
  if (version !== VERSION || !iv || !tag || ct === undefined) throw new Error('unrecognised secrets format');
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  decipher.setAAD(Buffer.from(tenantId));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  const plain = Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
  return JSON.parse(plain) as TaskSecretValues;
}

/** Every secret value, longest first (so a value containing another is masked whole). */
export function secretValuesOf(values: TaskSecretValues | null | undefined): string[] {
  if (!values) return [];
  return [...Object.values(values.env ?? {}), ...Object.values(values.headers ?? {})]
    .filter((v) => v.length > 0)
    .sort((a, b) => b.length - a.length);
}

/** Replaces every occurrence of a secret value with `***`. */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join('***');
  return out;
}
