// `npm run dev`: the whole system on embedded defaults, in one terminal.
// Temporal dev server (persistent, UI on 8233), PostgreSQL (DATABASE_URL or
// embedded), migrations, the API and the worker. Ctrl-C stops what it started.
//
// Shell tasks run on this machine, isolated (bubblewrap, a uid of their own,
// no view of the host's files), or with SHELL_ISOLATION=none as `nobody` when
// dev runs as root: either way `.data` is private to dev's user, the embedded
// PostgreSQL's superuser has a random password, and the API and worker log in
// as a role that can change rows but not the schema.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { URL, fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const run = (cmd, args, extra = {}) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...extra });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed with ${r.status}`);
};
const say = (msg) => console.error(`dev: ${msg}`);
/** The login role of the API and the worker on the embedded PostgreSQL (see libs/db/src/app-role.ts). */
const APP_ROLE = 'task_scheduler_app';

run(process.execPath, [join(root, 'scripts/ensure-setup.mjs')]);
say('building (tsc -b, workflow bundle)');
run('npm', ['run', '--silent', 'build']);

const stack = require('./lib/local-stack.cjs');
const { secureDataDir } = require('./lib/data-dir.cjs');
const devPostgres = require('./lib/dev-postgres.cjs');
const dataDir = join(root, '.data');
const embeddedPostgres = !process.env.DATABASE_URL;
// Everything created from here on (secrets, logs, temporal.db, and the children's
// own files) is private to this user; set only now, so that the installation and
// build above stay readable by the PostgreSQL system user and shell tasks.
process.umask(0o077);
const pgUser = embeddedPostgres ? devPostgres.postgresSystemUser() : null;
const hadData = existsSync(dataDir);
const tightened = secureDataDir(dataDir, { traverseGid: pgUser ? pgUser.gid : null });
if (hadData && tightened.length) say(`made ${tightened.length} path(s) in .data private (0700/0600)`);
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

  // PostgreSQL. Given a DATABASE_URL, dev uses it as it is, for migrations too: its roles are the user's business.
  let ownerUrl = process.env.DATABASE_URL;
  let appUrl = ownerUrl;
  if (embeddedPostgres) {
    const port = Number(process.env.EMBEDDED_PG_PORT || 54329);
    say(`starting embedded PostgreSQL on 127.0.0.1:${port} (data: .data/postgres)`);
    const pg = await devPostgres.startDevPostgres({
      dataDir,
      port,
      logFd: openSync(join(dataDir, 'postgres.log'), 'a', 0o600),
      runAs: pgUser,
    });
    started.push({ name: 'embedded PostgreSQL', stop: pg.stop });
    if (pg.rotated) say('the PostgreSQL superuser had the old default password; it now has a random one (.data/postgres-password)');
    ownerUrl = pg.url;
  } else if (!(await stack.postgresReachable(ownerUrl))) {
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
  const temporalEnv = {
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_UI_URL: process.env.TEMPORAL_UI_URL || `http://127.0.0.1:${uiPort}`,
  };
  say('applying migrations');
  run(process.execPath, [join(root, 'libs/db/dist/migrate.js')], { env: { ...process.env, ...temporalEnv, DATABASE_URL: ownerUrl } });

  if (embeddedPostgres) {
    // After the migrations, so that every table they made is granted (later ones are covered by default privileges).
    const appPassword = devPostgres.ensureSecret(join(dataDir, 'app-db-password'));
    const { ensureAppRole } = require(join(root, 'libs/db/dist/app-role.js'));
    const { Client } = require('pg');
    const owner = new Client({ connectionString: ownerUrl });
    await owner.connect();
    try {
      await ensureAppRole(owner, { role: APP_ROLE, password: appPassword, schema: 'public' });
    } finally {
      await owner.end();
    }
    const u = new URL(ownerUrl);
    u.username = APP_ROLE;
    u.password = appPassword;
    appUrl = u.toString();
  }

  // Readable lines for a person at a terminal (LOG_FORMAT=json for the production format).
  const appEnv = { LOG_FORMAT: 'pretty', ...process.env, ...temporalEnv, DATABASE_URL: appUrl, SECRETS_KEY: secretsKey };
  // The worker gets no admin key: it never uses one, and what a worker holds is what a task that gets into it finds.
  delete appEnv.BOOTSTRAP_API_KEY;
  for (const [name, entry, env] of [
    ['worker', 'apps/worker/dist/main.js', appEnv],
    ['API', 'apps/api/dist/main.js', { ...appEnv, BOOTSTRAP_API_KEY: adminKey, PORT: String(port) }],
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
    Temporal UI  ${temporalEnv.TEMPORAL_UI_URL}
    Admin key    ${firstStart ? adminKey : `in .data/admin-api-key${process.env.BOOTSTRAP_API_KEY ? ' (or BOOTSTRAP_API_KEY)' : ''}`}
  Ctrl-C stops everything.
`);
} catch (err) {
  say(err.message);
  await shutdown(1);
}
