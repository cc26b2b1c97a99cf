// `npm run bench`: end-to-end latency of one shell run through the product
// (HTTP trigger → workflow → shell activity → run record → visible over HTTP)
// against a bare-Temporal baseline (client.start → workflow → activity that
// spawns the same command → result), measured in the same process, on the same
// dev server, in alternating rounds. Prints medians and the ratio.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const stack = require('../scripts/lib/local-stack.cjs');
const { Connection, Client } = require('@temporalio/client');
const { NativeConnection, Worker, Runtime, DefaultLogger, bundleWorkflowCode } = require('@temporalio/worker');
const { createApp } = require(join(root, 'apps/api/dist/index.js'));
const { createWorkers } = require(join(root, 'apps/worker/dist/index.js'));
const { loadConfig } = require(join(root, 'libs/config/dist/index.js'));
const { generateApiKey } = require(join(root, 'libs/core/dist/index.js'));
const { createDataSource, runMigrations } = require(join(root, 'libs/db/dist/index.js'));

const ROUNDS = Number(process.env.BENCH_ROUNDS || 5);
const PER_ROUND = Number(process.env.BENCH_RUNS || 20);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

Runtime.install({ logger: new DefaultLogger('WARN') });
const stoppers = [];
try {
  const temporal = await stack.startTemporalDevServer({ cli: stack.resolveTemporalCli(), port: await stack.freePort() });
  stoppers.push(temporal.stop);

  const pg = await stack.resolvePostgres({ workDir: join(root, '.data/bench') });
  if (pg.stop) stoppers.push(pg.stop);
  const scratch = await stack.createScratchSchema(pg.url, 'ts_bench');
  stoppers.push(scratch.drop);
  const databaseUrl = scratch.url;
  const ds = await createDataSource({ url: databaseUrl, applicationName: 'bench', poolSize: 10 }).initialize();
  stoppers.push(() => ds.destroy());
  await runMigrations(ds);

  const apiKey = generateApiKey().key;
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    TEMPORAL_ADDRESS: temporal.address,
    TASK_QUEUE_PREFIX: `bench-${randomBytes(3).toString('hex')}`,
    BOOTSTRAP_API_KEY: apiKey,
    LOG_LEVEL: 'error',
    RATE_LIMIT_PER_KEY_PER_MINUTE: '10000000',
  });
  const app = await createApp(config, { logger: false });
  await app.listen(0, '127.0.0.1');
  stoppers.push(() => app.close());
  const api = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  // Rate limits are still counted on every request (their cost is measured) but set out of reach.
  await ds.query(`UPDATE tenants SET rate_limit_per_minute = 10000000`);

  const nativeConnection = await NativeConnection.connect({ address: temporal.address });
  const productWorkers = await createWorkers({
    config,
    dataSource: ds,
    connection: nativeConnection,
    workflows: { bundlePath: join(root, 'workflows/dist/workflow-bundle.js') },
  });
  const { code } = await bundleWorkflowCode({ workflowsPath: join(root, 'bench/baseline.workflow.js'), logger: new DefaultLogger('WARN') });
  const baselineQueue = `bench-baseline-${randomBytes(3).toString('hex')}`;
  const baselineWorker = await Worker.create({
    connection: nativeConnection,
    taskQueue: baselineQueue,
    workflowBundle: { code },
    activities: {
      runCommand: (command, args) =>
        new Promise((resolve, reject) => {
          const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
          let out = '';
          child.stdout.on('data', (c) => (out += c));
          child.on('error', reject);
          child.on('close', (exitCode) => resolve({ exitCode, out }));
        }),
    },
  });
  const all = [...productWorkers, baselineWorker];
  const running = all.map((w) => w.run());
  stoppers.push(async () => {
    for (const w of all) w.shutdown();
    await Promise.allSettled(running);
    await nativeConnection.close();
  });

  const connection = await Connection.connect({ address: temporal.address });
  stoppers.push(() => connection.close());
  const client = new Client({ connection });
  const headers = { 'x-api-key': apiKey, 'content-type': 'application/json' };
  const task = await (
    await fetch(`${api}/v1/tasks`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        name: 'bench-echo',
        executor: 'shell',
        shell: { command: 'echo', args: ['hello'] },
        retry: { maximumAttempts: 1 },
      }),
    })
  ).json();

  async function productRun() {
    const t0 = performance.now();
    const res = await fetch(`${api}/v1/tasks/${task.id}/runs`, { method: 'POST', headers });
    const run = await res.json();
    const accepted = performance.now() - t0;
    if (res.status !== 202) throw new Error(`trigger answered ${res.status}: ${JSON.stringify(run)}`);
    for (;;) {
      const poll = await fetch(`${api}/v1/runs/${run.id}`, { headers });
      if (poll.status !== 200) throw new Error(`poll answered ${poll.status}`);
      const r = await poll.json();
      if (r.status === 'succeeded') break;
      if (['failed', 'timed_out', 'cancelled'].includes(r.status)) throw new Error(`bench run ${r.status}: ${r.error}`);
      await sleep(5);
    }
    return { accepted, total: performance.now() - t0 };
  }
  async function baselineRun() {
    const t0 = performance.now();
    const handle = await client.workflow.start('baselineWorkflow', {
      taskQueue: baselineQueue,
      workflowId: `bench-${randomBytes(6).toString('hex')}`,
      args: ['echo', ['hello']],
    });
    const accepted = performance.now() - t0;
    await handle.result();
    return { accepted, total: performance.now() - t0 };
  }

  // Warm up both paths (JIT, connection pools, workflow caches).
  for (let i = 0; i < 5; i++) {
    await productRun();
    await baselineRun();
  }
  const product = { accepted: [], total: [] };
  const baseline = { accepted: [], total: [] };
  const rssBefore = process.memoryUsage().rss;
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < PER_ROUND; i++) {
      const p = await productRun();
      product.accepted.push(p.accepted);
      product.total.push(p.total);
      const b = await baselineRun();
      baseline.accepted.push(b.accepted);
      baseline.total.push(b.total);
    }
  }
  const fmt = (x) => `${x.toFixed(1)} ms`;
  const rows = [
    ['trigger accepted (HTTP 202 vs client.start)', median(product.accepted), median(baseline.accepted)],
    ['trigger → succeeded visible', median(product.total), median(baseline.total)],
  ];
  console.log(`\nshell run 'echo hello', ${ROUNDS} rounds × ${PER_ROUND} runs each path, sequential, alternating; medians`);
  console.log(`${'metric'.padEnd(46)}${'product'.padStart(12)}${'bare Temporal'.padStart(16)}${'ratio'.padStart(9)}`);
  for (const [name, p, b] of rows)
    console.log(`${name.padEnd(46)}${fmt(p).padStart(12)}${fmt(b).padStart(16)}${(p / b).toFixed(2).padStart(8)}x`);
  console.log(
    `process RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB (was ${(rssBefore / 2 ** 20).toFixed(0)} MiB before the measured rounds)`,
  );
} finally {
  for (const stop of stoppers.reverse()) {
    try {
      await stop();
    } catch (err) {
      console.error(`bench cleanup: ${err.message}`);
    }
  }
}
process.exit(0);
