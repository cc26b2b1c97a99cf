// `npm run bench:retention` (after `npm run build`): what a retention pass deleting old rows costs the run
// listing. Through the real API (GET /v1/runs?limit=50, keyset pages, BENCH_PAGES deep then from the top again,
// one request at a time) it measures latency alone, then while RetentionService.runOnce() deletes
// BENCH_OLD_RUNS old finished runs with one attempt and one output chunk each (3 rows per run; default 70,000
// runs, about 210,000 rows) in batches of RETENTION_BATCH (default 500), and prints median/p99 of both and the
// ratio. The tenant also has BENCH_KEPT_RUNS (default 20,000) recent runs: what the listing pages through.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { median, quantile, startBenchInfra, stopAll } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { Runtime, DefaultLogger } = require('@temporalio/worker');
const { createApp } = require(join(root, 'apps/api/dist/index.js'));
const { RetentionService } = require(join(root, 'apps/api/dist/retention/retention.service.js'));
const { loadConfig } = require(join(root, 'libs/config/dist/index.js'));
const { generateApiKey } = require(join(root, 'libs/core/dist/index.js'));

const OLD_RUNS = Number(process.env.BENCH_OLD_RUNS || 70_000);
const KEPT_RUNS = Number(process.env.BENCH_KEPT_RUNS || 20_000);
const PAGES = Number(process.env.BENCH_PAGES || 10);
const ALONE_REQUESTS = Number(process.env.BENCH_REQUESTS || 500);
const BATCH = process.env.RETENTION_BATCH || '500';
const DEADLINE_MS = 150_000;

Runtime.install({ logger: new DefaultLogger('WARN') });
const stoppers = [];
const started = Date.now();
try {
  const { temporal, databaseUrl, ds } = await startBenchInfra(root, stoppers, 'ts_bench_retention');
  const apiKey = generateApiKey().key;
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    TEMPORAL_ADDRESS: temporal.address,
    TASK_QUEUE_PREFIX: `bench-${randomBytes(3).toString('hex')}`,
    BOOTSTRAP_API_KEY: apiKey,
    LOG_LEVEL: 'error',
    RATE_LIMIT_PER_KEY_PER_MINUTE: '10000000',
    RETENTION_DAYS: '30',
    RETENTION_SECONDS: '0', // the bench runs the pass itself
    RETENTION_BATCH: BATCH,
  });
  const app = await createApp(config, { logger: false });
  await app.listen(0, '127.0.0.1');
  stoppers.push(() => app.close());
  const api = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  await ds.query(`UPDATE tenants SET rate_limit_per_minute = 10000000`);
  const [tenant] = await ds.query(`SELECT id FROM tenants WHERE slug = 'default'`);

  const t0 = performance.now();
  const [task] = await ds.query(
    `INSERT INTO tasks (tenant_id, name, executor, spec, timeout_seconds, retry_policy)
     VALUES ($1, 'bench-retention', 'shell', '{"command":"true"}', 60, '{}') RETURNING id`,
    [tenant.id],
  );
  // Old runs: finished 40 to 60 days ago; kept runs: the last 10 days. Created in chunks to keep each statement short.
  for (const [count, fromDays, spanDays] of [
    [OLD_RUNS, 60, 20],
    [KEPT_RUNS, 10, 10],
  ]) {
    for (let i = 0; i < count; i += 10_000) {
      const n = Math.min(10_000, count - i);
      await ds.query(
        `WITH r AS (
           INSERT INTO runs (tenant_id, task_id, task_version, trigger, status, workflow_id, stdout, created_at, queued_at,
                             updated_at, started_at, finished_at)
           SELECT $1, $2, 1, 'manual', 'succeeded', 'bench-' || gen_random_uuid(), 'hello', at, at, at, at, at + interval '1 second'
             FROM (SELECT now() - make_interval(days => $3) + random() * make_interval(days => $4) AS at
                     FROM generate_series(1, $5)) s
           RETURNING id, tenant_id, created_at),
         a AS (INSERT INTO run_attempts (run_id, tenant_id, attempt, status, stdout, started_at, finished_at)
               SELECT id, tenant_id, 1, 'succeeded', 'hello', created_at, created_at + interval '1 second' FROM r)
         INSERT INTO run_output_chunks (run_id, tenant_id, shard_index, attempt, seq, stream, data, created_at)
         SELECT id, tenant_id, 0, 1, 0, 'stdout', 'hello', created_at FROM r`,
        [tenant.id, task.id, fromDays, spanDays, n],
      );
    }
  }
  await ds.query(`ANALYZE runs; ANALYZE run_attempts; ANALYZE run_output_chunks`);
  console.log(
    `seeded ${OLD_RUNS} old + ${KEPT_RUNS} kept runs (with an attempt and an output chunk each) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );

  const headers = { 'x-api-key': apiKey };
  let cursor = null;
  let page = 0;
  async function listOnce() {
    const q = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const t = performance.now();
    const res = await fetch(`${api}/v1/runs?limit=50${q}`, { headers });
    const body = await res.json();
    const ms = performance.now() - t;
    if (res.status !== 200 || body.items.length !== 50)
      throw new Error(`GET /v1/runs answered ${res.status} with ${body.items?.length} items`);
    page = (page + 1) % PAGES;
    cursor = page === 0 ? null : body.nextCursor;
    return ms;
  }
  for (let i = 0; i < 50; i++) await listOnce(); // warm-up
  const alone = [];
  for (let i = 0; i < ALONE_REQUESTS; i++) alone.push(await listOnce());

  const retention = app.get(RetentionService);
  let report;
  let passMs;
  const tp = performance.now();
  const pass = retention.runOnce({ tenantId: tenant.id }).then((r) => {
    report = r;
    passMs = performance.now() - tp;
  });
  const during = [];
  while (report === undefined) {
    if (Date.now() - started > DEADLINE_MS) throw new Error('the retention pass did not end within the bench deadline');
    during.push(await listOnce());
  }
  await pass;
  const [{ left }] = await ds.query(`SELECT count(*)::int AS left FROM runs`);
  if (report?.deleted.runs !== OLD_RUNS || left !== KEPT_RUNS) {
    throw new Error(`expected ${OLD_RUNS} runs deleted and ${KEPT_RUNS} left; deleted ${report?.deleted.runs}, left ${left}`);
  }
  const rows = Object.values(report.deleted).reduce((a, b) => a + b, 0);
  const batches = report.scopes[0].batches.runs;
  console.log(
    `retention pass: ${rows} rows (${JSON.stringify(report.deleted)}) in ${batches} batches of ${BATCH} runs, ` +
      `${(passMs / 1000).toFixed(1)} s (${Math.round(rows / (passMs / 1000))} rows/s)`,
  );
  const fmt = (x) => `${x.toFixed(2)} ms`;
  console.log(`${'GET /v1/runs?limit=50'.padEnd(28)}${'requests'.padStart(10)}${'median'.padStart(12)}${'p99'.padStart(12)}`);
  for (const [name, xs] of [
    ['alone', alone],
    ['during the retention pass', during],
  ]) {
    console.log(
      `${name.padEnd(28)}${String(xs.length).padStart(10)}${fmt(median(xs)).padStart(12)}${fmt(quantile(xs, 0.99)).padStart(12)}`,
    );
  }
  console.log(
    `ratio during/alone: median ${(median(during) / median(alone)).toFixed(2)}×, p99 ${(quantile(during, 0.99) / quantile(alone, 0.99)).toFixed(2)}×`,
  );
} finally {
  await stopAll(stoppers);
}
