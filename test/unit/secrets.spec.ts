import { randomBytes } from 'node:crypto';
import { maskSecrets, openSecrets, parseSecretsKey, sealSecrets, secretValuesOf } from '@task-scheduler/core';
import { maskStream } from '../../activities/src/executor-support';

const key = randomBytes(32);
const tenant = '0b6f4c0e-8f0a-4d55-9a57-5b1f0c2f7a10';

describe('task secrets', () => {
  test('seal then open gives the values back; the sealed text holds none of them', () => {
    const values = { env: { TOKEN: 'sekrit-value-1' }, headers: { authorization: 'Bearer abc.def' } };
    const sealed = sealSecrets(values, key, tenant);
    expect(sealed).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(sealed).not.toContain('sekrit');
    expect(sealed).not.toContain('Bearer');
    expect(openSecrets(sealed, key, tenant)).toEqual(values);
  });

  test('each seal uses a fresh IV', () => {
    expect(sealSecrets({ env: { A: 'x' } }, key, tenant)).not.toBe(sealSecrets({ env: { A: 'x' } }, key, tenant));
  });

  test('a wrong key, another tenant or a changed byte does not open', () => {
    const sealed = sealSecrets({ env: { A: 'x' } }, key, tenant);
    expect(() => openSecrets(sealed, randomBytes(32), tenant)).toThrow();
    expect(() => openSecrets(sealed, key, 'another-tenant')).toThrow();
    const parts = sealed.split('.');
    const ct = Buffer.from(parts[3], 'base64url');
    ct[0] ^= 1;
    expect(() => openSecrets([...parts.slice(0, 3), ct.toString('base64url')].join('.'), key, tenant)).toThrow();
    expect(() => openSecrets('v2.a.b.c', key, tenant)).toThrow('unrecognised secrets format');
  });

  test('SECRETS_KEY is 32 bytes as hex or base64, nothing else', () => {
    expect(parseSecretsKey('ab'.repeat(32))).toHaveLength(32);
    expect(parseSecretsKey(key.toString('base64'))).toEqual(key);
    expect(() => parseSecretsKey('too-short')).toThrow('32 bytes');
  });

  test('masking replaces every occurrence, longest value first', () => {
    const secrets = secretValuesOf({ env: { A: 'abc', B: 'abcdef' }, headers: { h: '' } });
    expect(secrets).toEqual(['abcdef', 'abc']);
    expect(maskSecrets('x abcdef y abc z abcabc', secrets)).toBe('x *** y *** z ******');
    expect(maskSecrets('nothing here', [])).toBe('nothing here');
  });

  test('a stream cut by the output cap does not end in the first characters of a secret', () => {
    const secrets = ['s3cr3t-value'];
    expect(maskStream({ text: 'token=s3cr3t-va', truncated: true, bytes: 100 }, secrets).text).toBe('token=***');
    expect(maskStream({ text: 'token=s3cr3t-value and more', truncated: false, bytes: 27 }, secrets).text).toBe('token=*** and more');
    // Fewer than four characters are too common to tell; an uncut stream is left as it is.
    expect(maskStream({ text: 'ends with s3c', truncated: true, bytes: 100 }, secrets).text).toBe('ends with s3c');
    expect(maskStream({ text: 'token=s3cr3t-va', truncated: false, bytes: 15 }, secrets).text).toBe('token=s3cr3t-va');
  });
});
