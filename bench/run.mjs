// `npm run bench`: end-to-end latency of one shell run through the product
// (HTTP trigger → workflow → shell activity → run record → visible over HTTP)
// against a bare-Temporal baseline (client.start → workflow → activity that
// spawns the same command → result), measured in the same process, on the same
// dev server, in alternating rounds. Prints medians and the ratio.
//
// `npm run bench:fairness` (BENCH_SCENARIO=fairness): how long tenant B's
// single runs wait to start, alone and while tenant A bursts BENCH_BURST runs.
//
// `npm run bench:schedule` (BENCH_SCENARIO=schedule): fire lateness of a
// 1-second schedule over BENCH_SECONDS (default 60): from each fire's nominal
// time to its run being recorded, and to its shell attempt starting.
//
// `npm run bench:pipelines` (BENCH_SCENARIO=pipelines): per-step overhead of a
// pipeline: a 50-step chain against 50 single runs one after another, a
// 200-item fan-out against 200 single runs with as many in flight as the
// fan-out's maxParallelism, alternating; then one 200-step pipeline.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { median, runCommand, sleep, startBenchInfra, stopAll } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { Connection, Client } = require('@temporalio/client');
const { NativeConnection, Worker, Runtime, DefaultLogger, bundleWorkflowCode } = require('@temporalio/worker');
const { createApp } = require(join(root, 'apps/api/dist/index.js'));
const { createWorkers } = require(join(root, 'apps/worker/dist/index.js'));
const { loadConfig } = require(join(root, 'libs/config/dist/index.js'));
const { apiKeyFromString, generateApiKey } = require(join(root, 'libs/core/dist/index.js'));
const SCENARIO = process.env.BENCH_SCENARIO || 'latency';
const BURST = Number(process.env.BENCH_BURST || 1000);

const ROUNDS = Number(process.env.BENCH_ROUNDS || 5);
const PER_ROUND = Number(process.env.BENCH_RUNS || 20);

Runtime.install({ logger: new DefaultLogger('WARN') });
const stoppers = [];
try {
  const { temporal, databaseUrl, ds } = await startBenchInfra(root, stoppers, 'ts_bench');

  const apiKey = generateApiKey().key;
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    TEMPORAL_ADDRESS: temporal.address,
    TASK_QUEUE_PREFIX: `bench-${randomBytes(3).toString('hex')}`,
    BOOTSTRAP_API_KEY: apiKey,
    LOG_LEVEL: 'error',
    RATE_LIMIT_PER_KEY_PER_MINUTE: '10000000',
    // `SHELL_ISOLATION=none npm run bench` measures the product without shell isolation.
    ...(process.env.SHELL_ISOLATION ? { SHELL_ISOLATION: process.env.SHELL_ISOLATION } : {}),
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
      runCommand,
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

  if (SCENARIO === 'fairness') {
    await fairness({ api, ds });
    process.exitCode = 0;
  } else if (SCENARIO === 'schedule') {
    await scheduleLateness({ api, ds, headers, taskId: task.id });
  } else if (SCENARIO === 'pipelines') {
    await pipelineOverhead({ api, ds, headers, client });
  } else {
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
  }
} finally {
  await stopAll(stoppers);
}
process.exit(0);

/** A tenant with an admin key, straight in the database (the bench's own schema). */
async function benchTenant(ds, slug, maxConcurrentRuns) {
  const [tenant] = await ds.query(
    `INSERT INTO tenants (slug, name, max_concurrent_runs, max_tasks, rate_limit_per_minute) VALUES ($1, $1, $2, 100, 10000000) RETURNING id`,
    [slug, maxConcurrentRuns],
  );
  const key = apiKeyFromString(generateApiKey().key);
  await ds.query(`INSERT INTO api_keys (tenant_id, name, prefix, secret_hash, role) VALUES ($1, 'bench', $2, $3, 'admin')`, [
    tenant.id,
    key.prefix,
    key.secretHash,
  ]);
  return { 'x-api-key': key.key, 'content-type': 'application/json' };
}

async function fairness({ api, ds }) {
  const call = async (method, path, headers, body) => {
    const res = await fetch(`${api}${path}`, { method, headers, body: body && JSON.stringify(body) });
    const json = await res.json();
    if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${JSON.stringify(json)}`);
    return json;
  };
  const a = await benchTenant(ds, 'bench-a', 50);
  const b = await benchTenant(ds, 'bench-b', 50);
  const taskA = await call('POST', '/v1/tasks', a, {
    name: 'burst',
    executor: 'shell',
    shell: { script: 'sleep 1' },
    retry: { maximumAttempts: 1 },
  });
  const taskB = await call('POST', '/v1/tasks', b, {
    name: 'single',
    executor: 'shell',
    shell: { command: 'true' },
    retry: { maximumAttempts: 1 },
  });

  /** Trigger → started, as the run records tell (queuedAt → startedAt), and trigger → succeeded wall time. */
  async function runB() {
    const t0 = performance.now();
    const run = await call('POST', `/v1/tasks/${taskB.id}/runs`, b);
    for (;;) {
      const r = await call('GET', `/v1/runs/${run.id}`, b);
      if (r.status === 'succeeded') return { wait: Date.parse(r.startedAt) - Date.parse(r.queuedAt), total: performance.now() - t0 };
      if (['failed', 'timed_out', 'cancelled'].includes(r.status)) throw new Error(`bench run ${r.status}: ${r.error}`);
      await sleep(10);
    }
  }
  const SAMPLES = 10;
  for (let i = 0; i < 3; i++) await runB(); // warm-up
  const alone = [];
  for (let i = 0; i < SAMPLES; i++) alone.push(await runB());

  let submitted = 0;
  const burstStart = performance.now();
  const burst = Promise.all(
    Array.from({ length: 32 }, async () => {
      while (submitted < BURST) {
        submitted++;
        await call('POST', `/v1/tasks/${taskA.id}/runs`, a);
      }
    }),
  ).then(() => performance.now() - burstStart);
  const during = [];
  await sleep(500);
  for (let i = 0; i < SAMPLES; i++) {
    during.push(await runB());
    await sleep(500);
  }
  const submittedDuringSamples = submitted;
  const burstSubmitMs = await burst;
  const [{ waiting }] = await ds.query(
    `SELECT count(*)::int AS waiting FROM runs WHERE task_id = $1 AND admitted_at IS NULL AND status = 'queued'`,
    [taskA.id],
  );
  const fmt = (x) => `${x.toFixed(0)} ms`;
  const m = (xs, k) => median(xs.map((x) => x[k]));
  console.log(
    `\nfairness: tenant A bursts ${BURST} runs of 'sleep 1' (limit 50); tenant B runs 'true' ${SAMPLES} times alone, then during the burst; medians`,
  );
  console.log(
    `${'metric'.padEnd(34)}${'alone'.padStart(10)}${'during burst'.padStart(16)}${'ratio'.padStart(9)}${'max during'.padStart(13)}`,
  );
  for (const [name, k] of [
    ['B queued → started', 'wait'],
    ['B trigger → succeeded visible', 'total'],
  ])
    console.log(
      `${name.padEnd(34)}${fmt(m(alone, k)).padStart(10)}${fmt(m(during, k)).padStart(16)}${(m(during, k) / m(alone, k)).toFixed(2).padStart(8)}x${fmt(Math.max(...during.map((x) => x[k]))).padStart(13)}`,
    );
  console.log(
    `A: ${submittedDuringSamples} of ${BURST} triggers accepted while B was sampled; all ${BURST} accepted in ${(burstSubmitMs / 1000).toFixed(1)} s; ${waiting} still waiting for a slot at the end`,
  );
}

async function scheduleLateness({ api, ds, headers, taskId }) {
  const seconds = Number(process.env.BENCH_SECONDS || 60);
  const res = await fetch(`${api}/v1/schedules`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ name: 'bench-every-second', taskId, spec: { intervals: [{ everySeconds: 1 }] } }),
  });
  const schedule = await res.json();
  if (res.status !== 201) throw new Error(`create schedule answered ${res.status}: ${JSON.stringify(schedule)}`);
  await sleep(seconds * 1000);
  await fetch(`${api}/v1/schedules/${schedule.id}/pause`, { method: 'POST', headers, body: '{}' });
  await sleep(3000);
  const rows = await ds.query(
    `SELECT extract(epoch FROM r.queued_at - r.scheduled_at) * 1000 AS recorded,
            extract(epoch FROM a.started_at - r.scheduled_at) * 1000 AS started
       FROM runs r JOIN run_attempts a ON a.run_id = r.id AND a.attempt = 1
      WHERE r.schedule_id = $1 ORDER BY r.scheduled_at`,
    [schedule.id],
  );
  const [{ fires }] = await ds.query(`SELECT count(DISTINCT scheduled_at)::int AS fires FROM runs WHERE schedule_id = $1`, [schedule.id]);
  const pct = (xs, p) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
  };
  const recorded = rows.map((r) => Number(r.recorded));
  const started = rows.map((r) => Number(r.started));
  console.log(`\n1-second schedule for ${seconds} s: ${rows.length} runs (${fires} distinct fires)`);
  console.log(`${'lateness'.padEnd(40)}${'p50'.padStart(9)}${'p90'.padStart(9)}${'p99'.padStart(9)}${'max'.padStart(9)}`);
  for (const [name, xs] of [
    ['fire → run recorded (workflow started)', recorded],
    ['fire → shell attempt started', started],
  ])
    console.log(`${name.padEnd(40)}${[50, 90, 99, 100].map((p) => `${pct(xs, p).toFixed(0)} ms`.padStart(9)).join('')}`);
}

/** Waits for a run (task or pipeline) to reach a final status, polling its record over HTTP. */
async function untilFinal(api, headers, path, pollMs) {
  for (let i = 0; i < 600_000 / pollMs; i++) {
    const res = await fetch(`${api}${path}`, { headers });
    if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}`);
    const r = await res.json();
    if (r.status === 'succeeded') return r;
    if (['failed', 'timed_out', 'cancelled'].includes(r.status)) throw new Error(`${path} ended ${r.status}: ${r.error}`);
    await sleep(pollMs);
  }
  throw new Error(`${path} did not end within 10 minutes`);
}

async function post(api, headers, path, body) {
  const res = await fetch(`${api}${path}`, { method: 'POST', headers, body: JSON.stringify(body ?? {}) });
  const json = await res.json();
  if (res.status >= 300) throw new Error(`POST ${path} answered ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

async function pipelineOverhead({ api, ds, headers, client }) {
  const rounds = Number(process.env.BENCH_ROUNDS || 5);
  const chainLength = Number(process.env.BENCH_CHAIN || 50);
  const items = Number(process.env.BENCH_ITEMS || 200);
  const parallelism = Number(process.env.BENCH_PARALLELISM || 32);
  const pollMs = 10;
  await ds.query(`UPDATE tenants SET max_concurrent_runs = 10000`);
  const task = await post(api, headers, '/v1/tasks', {
    name: 'bench-true',
    executor: 'shell',
    shell: { command: 'true' },
    retry: { maximumAttempts: 1 },
  });
  const chain = await post(api, headers, '/v1/pipelines', {
    name: 'bench-chain',
    steps: Array.from({ length: chainLength }, (_, i) => ({ key: `s${i}`, task: task.id, dependsOn: i ? [`s${i - 1}`] : [] })),
    maxParallelism: 1,
  });
  const fan = await post(api, headers, '/v1/pipelines', {
    name: 'bench-fan-out',
    steps: [{ key: 'each', task: task.id, forEach: Array.from({ length: items }, (_, i) => i) }],
    maxParallelism: parallelism,
  });
  const timed = async (f) => {
    const t0 = performance.now();
    await f();
    return performance.now() - t0;
  };
  const pipelineRun = (id) => async () => {
    const run = await post(api, headers, `/v1/pipelines/${id}/runs`, {});
    await untilFinal(api, headers, `/v1/pipeline-runs/${run.id}`, pollMs);
  };
  const singleRun = async () => {
    const run = await post(api, headers, `/v1/tasks/${task.id}/runs`, {});
    await untilFinal(api, headers, `/v1/runs/${run.id}`, pollMs);
  };
  const sequentialSingles = async () => {
    for (let i = 0; i < chainLength; i++) await singleRun();
  };
  const parallelSingles = async () => {
    let next = 0;
    await Promise.all(
      Array.from({ length: parallelism }, async () => {
        while (next < items) {
          next++;
          await singleRun();
        }
      }),
    );
  };
  const cases = [
    {
      name: `${chainLength}-step chain vs ${chainLength} single runs in sequence`,
      product: pipelineRun(chain.id),
      baseline: sequentialSingles,
      n: chainLength,
    },
    {
      name: `${items}-item fan-out vs ${items} single runs, ${parallelism} in flight`,
      product: pipelineRun(fan.id),
      baseline: parallelSingles,
      n: items,
    },
  ];
  // One warm-up of each, then rounds alternating product and baseline.
  for (const c of cases) {
    await c.product();
    await c.baseline();
  }
  const results = cases.map(() => ({ product: [], baseline: [] }));
  for (let r = 0; r < rounds; r++) {
    for (const [i, c] of cases.entries()) {
      results[i].product.push(await timed(c.product));
      results[i].baseline.push(await timed(c.baseline));
    }
  }
  console.log(`\npipelines of shell 'true', ${rounds} rounds after a warm-up, alternating; medians (min–max)`);
  console.log(
    `${'case'.padEnd(58)}${'pipeline'.padStart(22)}${'single runs'.padStart(22)}${'ratio'.padStart(8)}${'per step'.padStart(12)}`,
  );
  const span = (xs) =>
    `${(median(xs) / 1000).toFixed(2)} s (${(Math.min(...xs) / 1000).toFixed(1)}–${(Math.max(...xs) / 1000).toFixed(1)})`;
  for (const [i, c] of cases.entries()) {
    const p = median(results[i].product);
    const b = median(results[i].baseline);
    console.log(
      `${c.name.padEnd(58)}${span(results[i].product).padStart(22)}${span(results[i].baseline).padStart(22)}${(p / b).toFixed(2).padStart(7)}x${`${((p - b) / c.n).toFixed(1)} ms`.padStart(12)}`,
    );
  }
  // The largest pipeline the limits allow: 200 steps, 10 layers of 20, each step after every step of the layer before.
  const width = 20;
  const layers = 10;
  const big = await post(api, headers, '/v1/pipelines', {
    name: 'bench-200-steps',
    steps: Array.from({ length: width * layers }, (_, i) => {
      const layer = Math.floor(i / width);
      return {
        key: `l${layer}_${i % width}`,
        task: task.id,
        dependsOn: layer ? Array.from({ length: width }, (_, j) => `l${layer - 1}_${j}`) : [],
      };
    }),
    maxParallelism: width,
  });
  const t0 = performance.now();
  const bigRun = await post(api, headers, `/v1/pipelines/${big.id}/runs`, {});
  await untilFinal(api, headers, `/v1/pipeline-runs/${bigRun.id}`, 50);
  const elapsed = performance.now() - t0;
  const described = await client.workflow.getHandle(bigRun.workflowId).describe();
  console.log(
    `200-step pipeline (${layers} layers × ${width}, ${(layers - 1) * width * width} edges): succeeded in ${(elapsed / 1000).toFixed(1)} s; ` +
      `pipeline workflow history ${described.historyLength} events, ${(Number(described.historySize ?? 0) / 1024).toFixed(0)} KiB (last run of its chain)`,
  );
}
