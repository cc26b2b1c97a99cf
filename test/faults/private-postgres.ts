/* A PostgreSQL cluster of one fault test's own (initdb + pg_ctl from the machine's binaries on a temp dir and a
 * free port), so the test can cut every connection or stop the server without touching the shared one other
 * suites use. As root, the server runs as the `postgres` system user, which PostgreSQL requires. */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_TENANT, TenantEntity, createDataSource, runMigrations } from '@task-scheduler/db';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const localStack = require('../../scripts/lib/local-stack.cjs');
const run = promisify(execFile);

export interface PrivatePostgres {
  url: string;
  port: number;
  /** `pg_ctl stop -m fast`: every session is cut, new connections are refused. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and deletes its data. */
  destroy(): Promise<void>;
}

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  const found = versions.map((v) => join(root, v, 'bin')).find((d) => existsSync(join(d, 'pg_ctl')));
  if (!found) throw new Error(`no PostgreSQL binaries under ${root}`);
  return found;
}

/** Initialises, starts and migrates a cluster, with the `default` tenant global setup also makes. */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), 'ts-fault-pg-'));
  const data = join(dir, 'data');
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const pg = async (cmd: string, args: string[]) => {
    const exe = join(bin, cmd);
    await (asRoot ? run('runuser', ['-u', 'postgres', '--', exe, ...args]) : run(exe, args));
  };
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const port: number = await localStack.freePort();
  await pg('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const start = () => pg('pg_ctl', ['-D', data, '-o', opts, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start']);
  const stop = () => pg('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']);
  await start();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const ds = await createDataSource({ url, applicationName: 'task-scheduler-test-setup', poolSize: 2 }).initialize();
  try {
    await runMigrations(ds);
    await ds.getRepository(TenantEntity).save(ds.getRepository(TenantEntity).create(DEFAULT_TENANT));
  } finally {
    await ds.destroy();
  }
  return {
    url,
    port,
    stop,
    start,
    async destroy() {
      await stop().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
