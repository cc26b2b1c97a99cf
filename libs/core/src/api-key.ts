import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

/**
 * API keys look like `tsch_<id>_<secret>`. The `tsch_` type prefix lets secret
 * scanners recognise a leaked key; `tsch_<id>` is stored in clear for lookup,
 * the secret only as a SHA-256 hash. A fast hash is sufficient because the
 * secret is 40 random base62 characters (~238 bits), so it cannot be guessed
 * offline the way a password can.
 */
export const API_KEY_TYPE_PREFIX = 'tsch';
const KEY_PATTERN = /^(tsch_[a-z0-9]{4,32})_([A-Za-z0-9]{16,128})$/;
const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export interface ParsedApiKey {
  prefix: string;
  secret: string;
}

export interface GeneratedApiKey extends ParsedApiKey {
  /** The full key, shown to its owner exactly once. */
  key: string;
  secretHash: string;
}

export function parseApiKey(raw: string): ParsedApiKey | null {
  const m = KEY_PATTERN.exec(raw);
  return m ? { prefix: m[1], secret: m[2] } : null;
}

export function hashApiKeySecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** Constant-time comparison of a presented secret with a stored hash. */
export function apiKeySecretMatches(secret: string, storedHash: string): boolean {
  const presented = Buffer.from(hashApiKeySecret(secret), 'hex');
  const stored = Buffer.from(storedHash, 'hex');
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}

export function generateApiKey(): GeneratedApiKey {
  const prefix = `${API_KEY_TYPE_PREFIX}_${randomBytes(6).toString('hex')}`;
  let secret = '';
  for (let i = 0; i < 40; i++) secret += BASE62[randomInt(BASE62.length)];
  return { prefix, secret, key: `${prefix}_${secret}`, secretHash: hashApiKeySecret(secret) };
}

/** Splits a configured key (e.g. `BOOTSTRAP_API_KEY`) into what is stored. */
export function apiKeyFromString(raw: string): GeneratedApiKey {
  const parsed = parseApiKey(raw);
  if (!parsed) throw new Error('API key must look like tsch_<prefix>_<secret>');
  return { ...parsed, key: raw, secretHash: hashApiKeySecret(parsed.secret) };
}
