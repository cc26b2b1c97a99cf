// Shared by the bench scripts: statistics, the baseline's activity and cleanup.
import { spawn } from 'node:child_process';

/** The q-quantile of xs (nearest rank), e.g. 0.99. */
export const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
};

/** The median (the mean of the two middle values for an even count). */
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** The bare-Temporal baseline's one activity: spawns the command, resolves with its exit code and stdout. */
export function runCommand(command, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.on('error', reject);
    child.on('close', (exitCode) => resolve({ exitCode, out }));
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs cleanup functions newest first; one that fails is reported and the rest still run. */
export async function stopAll(stoppers) {
  for (const stop of [...stoppers].reverse()) {
    try {
      await stop();
    } catch (err) {
      console.error(`bench cleanup: ${err.message}`);
    }
  }
}

/**
 * What every product bench starts on: its own Temporal dev server, PostgreSQL as the tests find it (a throwaway
 * schema, migrated) and a data source on it. Each part's cleanup goes onto `stoppers`.
 */
export async function startBenchInfra(root, stoppers, schemaPrefix) {
  const { createRequire } = await import('node:module');
  const { join } = await import('node:path');
  const require = createRequire(join(root, 'bench/lib.mjs'));
  const stack = require(join(root, 'scripts/lib/local-stack.cjs'));
  const { createDataSource, runMigrations } = require(join(root, 'libs/db/dist/index.js'));
  const temporal = await stack.startTemporalDevServer({ cli: stack.resolveTemporalCli(), port: await stack.freePort() });
  stoppers.push(temporal.stop);
  const pg = await stack.resolvePostgres({ workDir: join(root, '.data/bench') });
  if (pg.stop) stoppers.push(pg.stop);
  const scratch = await stack.createScratchSchema(pg.url, schemaPrefix);
  stoppers.push(scratch.drop);
  const ds = await createDataSource({ url: scratch.url, applicationName: 'bench', poolSize: 10 }).initialize();
  stoppers.push(() => ds.destroy());
  await runMigrations(ds);
  return { temporal, databaseUrl: scratch.url, ds };
}
