// `npm run dev`: the whole system on embedded defaults, in one terminal.
// Temporal dev server (persistent, UI on 8233), PostgreSQL (DATABASE_URL or
// embedded), migrations, the API and the worker. Ctrl-C stops what it started.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const run = (cmd, args, extra = {}) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...extra });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed with ${r.status}`);
};
const say = (msg) => console.error(`dev: ${msg}`);

run(process.execPath, [join(root, 'scripts/ensure-setup.mjs')]);
say('building (tsc -b, workflow bundle)');
run('npm', ['run', '--silent', 'build']);

const stack = require('./lib/local-stack.cjs');
const dataDir = join(root, '.data');
mkdirSync(dataDir, { recursive: true });
const started = []; // { name, stop }
let shuttingDown = false;

async function shutdown(code) {
  if (shuttingDown) return;
  shuttingDown = true;
  say('stopping…');
  for (const s of started.reverse()) {
    try {
      await s.stop();
      say(`stopped ${s.name}`);
    } catch (err) {
      say(`could not stop ${s.name}: ${err.message}`);
    }
  }
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

try {
  const t0 = Date.now();
  // Temporal
  let temporalAddress = process.env.TEMPORAL_ADDRESS;
  const uiPort = Number(process.env.TEMPORAL_UI_PORT || 8233);
  if (!temporalAddress) {
    const port = Number(process.env.TEMPORAL_PORT || 7233);
    if (await stack.portOpen(port)) {
      throw new Error(`port ${port} is taken: stop that process, or point at an existing Temporal with TEMPORAL_ADDRESS=host:port`);
    }
    const cli = stack.resolveTemporalCli();
    say(`starting Temporal dev server on 127.0.0.1:${port} (data: .data/temporal.db)`);
    const t = await stack.startTemporalDevServer({
      cli,
      port,
      uiPort,
      dbFile: join(dataDir, 'temporal.db'),
      logFile: join(dataDir, 'temporal.log'),
    });
    started.push({ name: 'Temporal dev server', stop: t.stop });
    temporalAddress = t.address;
  }

  // PostgreSQL
  let databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    const port = Number(process.env.EMBEDDED_PG_PORT || 54329);
    say(`starting embedded PostgreSQL on 127.0.0.1:${port} (data: .data/postgres)`);
    const pg = await stack.spawnEmbeddedPostgres({ dataDir: join(dataDir, 'postgres'), port, logFile: join(dataDir, 'postgres.log') });
    started.push({ name: 'embedded PostgreSQL', stop: pg.stop });
    databaseUrl = pg.url;
  } else if (!(await stack.postgresReachable(databaseUrl))) {
    throw new Error('DATABASE_URL is set but PostgreSQL does not answer there');
  }

  // Admin key: generated on first start, kept (mode 0600) in .data for later starts.
  const keyFile = join(dataDir, 'admin-api-key');
  let firstStart = false;
  let adminKey = process.env.BOOTSTRAP_API_KEY;
  if (!adminKey) {
    if (!existsSync(keyFile)) {
      const { generateApiKey } = require(join(root, 'libs/core/dist/index.js'));
      writeFileSync(keyFile, `${generateApiKey().key}\n`, { mode: 0o600 });
      chmodSync(keyFile, 0o600);
      firstStart = true;
    }
    adminKey = readFileSync(keyFile, 'utf8').trim();
  }

  // Key sealing task secrets: same treatment as the admin key.
  const secretsKeyFile = join(dataDir, 'secrets-key');
  let secretsKey = process.env.SECRETS_KEY;
  if (!secretsKey) {
    if (!existsSync(secretsKeyFile)) writeFileSync(secretsKeyFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    secretsKey = readFileSync(secretsKeyFile, 'utf8').trim();
  }

  const port = Number(process.env.PORT || 3000);
  const env = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_UI_URL: process.env.TEMPORAL_UI_URL || `http://127.0.0.1:${uiPort}`,
    BOOTSTRAP_API_KEY: adminKey,
    SECRETS_KEY: secretsKey,
    PORT: String(port),
  };
  say('applying migrations');
  run(process.execPath, [join(root, 'libs/db/dist/migrate.js')], { env });

  for (const [name, entry] of [
    ['worker', 'apps/worker/dist/main.js'],
    ['API', 'apps/api/dist/main.js'],
  ]) {
    const child = spawn(process.execPath, [join(root, entry)], { cwd: root, env, stdio: 'inherit' });
    child.on('exit', (code, signal) => {
      if (!shuttingDown) {
        say(`${name} exited (${signal ?? code}); stopping everything`);
        void shutdown(1);
      }
    });
    started.push({ name, stop: () => stack.stopChild(child, 35_000) });
  }

  const api = `http://127.0.0.1:${port}`;
  await stack.waitFor(
    'API',
    async () => {
      try {
        return (await fetch(`${api}/ready`)).ok;
      } catch {
        return false;
      }
    },
    60_000,
  );
  const seconds = ((Date.now() - t0) / 1000).toFixed(1);
  console.error(`
  Task Scheduler is ready (${seconds}s)
    API          ${api}
    Swagger      ${api}/docs
    Temporal UI  ${env.TEMPORAL_UI_URL}
    Admin key    ${firstStart ? adminKey : `in .data/admin-api-key${process.env.BOOTSTRAP_API_KEY ? ' (or BOOTSTRAP_API_KEY)' : ''}`}
  Ctrl-C stops everything.
`);
} catch (err) {
  say(err.message);
  await shutdown(1);
}
