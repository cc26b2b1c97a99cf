import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '@task-scheduler/config';

const base = { DATABASE_URL: 'postgres://u@localhost/db' };

describe('configuration', () => {
  test('defaults fill everything but the database URL', () => {
    const c = loadConfig(base);
    expect(c).toMatchObject({
      TEMPORAL_ADDRESS: '127.0.0.1:7233',
      PORT: 3000,
      WORKER_QUEUES: ['workflows', 'shell', 'http'],
      OUTPUT_CAP_BYTES: 65536,
      HEARTBEAT_TIMEOUT_SECONDS: 15,
      SHELL_RUN_AS: 'auto',
      HTTP_ALLOW_CIDRS: [],
    });
  });

  test('every bad variable is named in one error', () => {
    try {
      loadConfig({
        DATABASE_URL: 'mysql://x',
        PORT: 'eighty',
        WORKER_QUEUES: 'shell,gpu',
        BOOTSTRAP_API_KEY: 'hunter2-value',
        SECRETS_KEY: 'not-32-bytes',
        HTTP_ALLOW_CIDRS: '10.0.0.0/8,intranet',
      });
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const msg = (err as Error).message;
      for (const name of ['DATABASE_URL', 'PORT', 'WORKER_QUEUES', 'BOOTSTRAP_API_KEY', 'SECRETS_KEY', 'HTTP_ALLOW_CIDRS'])
        expect(msg).toContain(name);
      expect(msg).not.toContain('hunter2-value'); // a rejected secret value is not echoed
    }
  });

  test('a missing DATABASE_URL is reported', () => {
    expect(() => loadConfig({})).toThrow(/DATABASE_URL/);
  });

  test('a config file is overlaid by the environment', () => {
    const file = join(tmpdir(), `ts-config-${process.pid}.json`);
    writeFileSync(file, JSON.stringify({ ...base, PORT: 4000, LOG_LEVEL: 'debug' }));
    expect(loadConfig({ CONFIG_FILE: file, PORT: '5000' })).toMatchObject({
      PORT: 5000,
      LOG_LEVEL: 'debug',
      DATABASE_URL: base.DATABASE_URL,
    });
    expect(() => loadConfig({ CONFIG_FILE: join(tmpdir(), 'does-not-exist.json') })).toThrow(/CONFIG_FILE/);
  });
});
