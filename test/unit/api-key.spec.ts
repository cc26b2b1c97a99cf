import { apiKeyFromString, apiKeySecretMatches, generateApiKey, parseApiKey } from '@task-scheduler/core';

describe('API keys', () => {
  test('a generated key parses back to its prefix and secret, and only its secret matches the stored hash', () => {
    const k = generateApiKey();
    expect(k.key).toMatch(/^tsch_[0-9a-f]{12}_[A-Za-z0-9]{40}$/);
    expect(parseApiKey(k.key)).toEqual({ prefix: k.prefix, secret: k.secret });
    expect(apiKeySecretMatches(k.secret, k.secretHash)).toBe(true);
    expect(apiKeySecretMatches(`${k.secret.slice(0, -1)}x`, k.secretHash)).toBe(false);
    expect(k.secretHash).not.toContain(k.secret);
  });

  test('keys are unique', () => {
    const keys = new Set(Array.from({ length: 200 }, () => generateApiKey().key));
    expect(keys.size).toBe(200);
  });

  test.each([
    '',
    'tsch_abc_short',
    'xxxx_abcdef_AAAAAAAAAAAAAAAAAAAA',
    'tsch_ABCDEF_AAAAAAAAAAAAAAAAAAAA',
    'tsch_abcdef_AAAA-AAAAAAAAAAAAAAAAA',
    'tsch_abcdef',
  ])('%j is not a key', (raw) => {
    expect(parseApiKey(raw)).toBeNull();
  });

  test('a configured key is split into what is stored', () => {
    const k = apiKeyFromString('tsch_test_AAAAAAAAAAAAAAAAAAAAAAAA');
    expect(k.prefix).toBe('tsch_test');
    expect(apiKeySecretMatches('AAAAAAAAAAAAAAAAAAAAAAAA', k.secretHash)).toBe(true);
    expect(() => apiKeyFromString('nope')).toThrow(/tsch_/);
  });

  test('a malformed stored hash never matches', () => {
    expect(apiKeySecretMatches('anything', 'not-hex')).toBe(false);
  });
});
