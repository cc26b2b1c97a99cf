/* The API's first-start bootstrap against a real PostgreSQL, each case on an empty schema of its own:
 * the `default` tenant and its admin key, BOOTSTRAP_API_KEY added once, and a key that cannot be added said. */
import { Logger } from '@nestjs/common';
import { BootstrapService } from '../../apps/api/src/auth/bootstrap.service';
import { loadConfig } from '@task-scheduler/config';
import { apiKeyFromString, generateApiKey } from '@task-scheduler/core';
import { createDataSource, runMigrations } from '@task-scheduler/db';
import type { DataSource } from 'typeorm';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { createScratchSchema } = require('../../scripts/lib/local-stack.cjs');

let db: DataSource;
let drop: () => Promise<void>;

beforeEach(async () => {
  jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  const url = new URL(process.env.TEST_DATABASE_URL as string);
  url.searchParams.delete('options');
  const scratch = await createScratchSchema(url.toString(), 'ts_test');
  drop = scratch.drop;
  db = await createDataSource({ url: scratch.url, applicationName: 'task-scheduler-test-bootstrap', poolSize: 2 }).initialize();
  await runMigrations(db);
});
afterEach(async () => {
  jest.restoreAllMocks();
  await db?.destroy();
  await drop?.();
});

const service = (bootstrapKey?: string) =>
  new BootstrapService(db, loadConfig({ DATABASE_URL: 'postgres://unused', ...(bootstrapKey ? { BOOTSTRAP_API_KEY: bootstrapKey } : {}) }));
const keys = () => db.query(`SELECT t.slug, k.prefix, k.role, k.platform_admin FROM api_keys k JOIN tenants t ON t.id = k.tenant_id`);

test('an empty database gets the default tenant and the given admin key, once however often the API starts', async () => {
  const key = generateApiKey().key;
  await service(key).onApplicationBootstrap();
  await service(key).onApplicationBootstrap();
  expect(await db.query(`SELECT slug, name, status FROM tenants`)).toEqual([{ slug: 'default', name: 'Default tenant', status: 'active' }]);
  expect(await keys()).toEqual([{ slug: 'default', prefix: apiKeyFromString(key).prefix, role: 'admin', platform_admin: true }]);
});

test('without BOOTSTRAP_API_KEY the first start prints a generated key once, which is stored only as its hash', async () => {
  const written: string[] = [];
  jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  });
  await service().onApplicationBootstrap();
  await service().onApplicationBootstrap();
  const printed = written.join('').match(/Admin API key \(shown once, store it now\): (\S+)/g) ?? [];
  expect(printed).toHaveLength(1);
  const key = printed[0]?.split(': ')[1] ?? '';
  const { prefix, secret, secretHash } = apiKeyFromString(key);
  const [row] = await db.query(`SELECT prefix, secret_hash FROM api_keys`);
  expect(row).toEqual({ prefix, secret_hash: secretHash });
  expect(row.secret_hash).not.toContain(secret);
});

test('a database with tenants but no `default` adds no key, and the operator who set one is told why', async () => {
  await db.query(`INSERT INTO tenants (slug, name) VALUES ('acme', 'Acme')`);
  const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  await service(generateApiKey().key).onApplicationBootstrap();
  expect(await db.query(`SELECT slug FROM tenants`)).toEqual([{ slug: 'acme' }]);
  expect(await keys()).toEqual([]);
  expect(warn.mock.calls.map((c) => c[0])).toEqual([
    'BOOTSTRAP_API_KEY not added: the database has tenants but no tenant with slug "default"',
  ]);
});

test('an existing default tenant gets BOOTSTRAP_API_KEY added on a later start', async () => {
  await db.query(`INSERT INTO tenants (slug, name) VALUES ('default', 'Made earlier'), ('acme', 'Acme')`);
  const key = generateApiKey().key;
  await service(key).onApplicationBootstrap();
  expect(await keys()).toEqual([{ slug: 'default', prefix: apiKeyFromString(key).prefix, role: 'admin', platform_admin: true }]);
});
