// `npm run bench [-- <scenario> ...]`: the product against bare Temporal, side by side, unattended.
//
// One Temporal dev server (started here, pinned dynamic config from scripts/lib/local-stack.cjs), PostgreSQL as
// the tests find it (a throwaway schema). Four processes besides the dev server, so that no side shares an event
// loop with another: the API (apps/api/dist/main.js), the product worker (apps/worker/dist/main.js, all queues),
// the baseline worker (bench/perf-baseline-worker.mjs, SDK defaults, the same bundle mechanism) and this load
// generator. Each scenario runs product and baseline interleaved (A B A B …) for BENCH_REPS repetitions (5)
// after a warm-up, writes bench/results/<date>-<scenario>.json and prints one table: median, min and max over
// the repetitions, and the ratio of the medians. docs/performance.md holds the latest figures and the method.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { URLSearchParams, fileURLToPath } from 'node:url';
import { median, quantile, sleep, startBenchInfra, stopAll } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { Connection, Client, ScheduleOverlapPolicy } = require('@temporalio/client');
const stack = require(join(root, 'scripts/lib/local-stack.cjs'));
const { apiKeyFromString, generateApiKey } = require(join(root, 'libs/core/dist/index.js'));

const REPS = Number(process.env.BENCH_REPS || 5);
const SETTLE_MS = 1000;
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
/** The longest a single run may take before the bench gives up on it. */
const RUN_DEADLINE_MS = 120_000;
const FINAL = ['succeeded', 'failed', 'cancelled', 'timed_out'];
const SCENARIOS = {
  throughput: throughputScenario,
  'first-instruction': firstInstructionScenario,
  accepted: acceptedScenario,
  schedules: schedulesScenario,
  'api-load': apiLoadScenario,
  'run-list': runListScenario,
  memory: memoryScenario,
  fairness: fairnessScenario,
  soak: soakScenario,
  // A diagnostic, not in the default run.
  'api-cost': apiCostScenario,
};
const asked = process.argv.slice(2);
for (const name of asked) if (!SCENARIOS[name]) throw new Error(`unknown scenario ${name}; known: ${Object.keys(SCENARIOS).join(', ')}`);
const chosen = asked.length ? asked : Object.keys(SCENARIOS).filter((name) => name !== 'api-cost');

// ---------------------------------------------------------------------------------------------- scenarios

/** 1: runs of `true` through the API with k in flight (closed loop), against bare workflow + one activity. */
async function throughputScenario(ctx) {
  const task = await createTask(ctx, 'perf-true', { command: 'true' });
  const levels = (process.env.BENCH_LEVELS || '1,8,32,128').split(',').map(Number);
  const rows = [];
  for (const level of levels) {
    const n = Number(process.env.BENCH_THROUGHPUT_RUNS || Math.max(40, level));
    const product = () => closedLoop(n, level, () => productRunToEnd(ctx, task.id));
    const bare = () => closedLoop(n, level, () => baselineRunToEnd(ctx, 'true', []));
    await product();
    await bare();
    const p = [];
    const b = [];
    const cpu = { product: [], baseline: [] };
    for (let rep = 0; rep < REPS; rep++) {
      let before = cpuTimes(ctx);
      p.push(n / ((await timed(product)) / 1000));
      // A product run is done at its final record; its workflow closes just after. Let both sides settle before
      // reading CPU, so that one side's tail is not counted in the other's window.
      await sleep(SETTLE_MS);
      cpu.product.push(cpuPerRun(before, cpuTimes(ctx), n));
      before = cpuTimes(ctx);
      b.push(n / ((await timed(bare)) / 1000));
      await sleep(SETTLE_MS);
      cpu.baseline.push(cpuPerRun(before, cpuTimes(ctx), n));
      console.log(`  ${level} in flight, rep ${rep + 1}: product ${p.at(-1).toFixed(1)} runs/s, bare ${b.at(-1).toFixed(1)} runs/s`);
    }
    const cpuMedians = Object.fromEntries(
      Object.entries(cpu).map(([side, reps]) => [
        side,
        Object.fromEntries(Object.keys(reps[0]).map((k) => [k, median(reps.map((r) => r[k]))])),
      ]),
    );
    console.log(`  CPU ms per run, ${level} in flight: ${JSON.stringify(cpuMedians)}`);
    rows.push({
      ...row(`throughput, ${level} in flight (${n} runs)`, 'runs/s', p, b, { kind: 'ratio-min', value: 0.85 }),
      cpuMsPerRun: cpuMedians,
    });
  }
  return rows;
}

/**
 * 2: trigger → the command's first instruction, open loop at fixed rates. The command is `date +%s%N`: it prints
 * its own clock, read against this process's clock when the trigger was sent (same host).
 */
async function firstInstructionScenario(ctx) {
  const task = await createTask(ctx, 'perf-date', { command: 'date', args: ['+%s%N'] });
  const rates = (process.env.BENCH_RATES || '2,5').split(',').map(Number);
  const seconds = Number(process.env.BENCH_OPEN_SECONDS || 8);
  const rows = [];
  const product = async () => {
    const sentAt = nowNs();
    const run = await trigger(ctx, task.id);
    const [{ stdout }] = await waitRecord(ctx, run.id);
    return Number(BigInt(stdout.trim()) - sentAt) / 1e6;
  };
  const bare = async () => {
    const sentAt = nowNs();
    const { out } = await baselineRunToEnd(ctx, 'date', ['+%s%N']);
    return Number(BigInt(out.trim()) - sentAt) / 1e6;
  };
  for (const rate of rates) {
    await openLoop(rate, 2, product);
    await openLoop(rate, 2, bare);
    const stats = { p50: [[], []], p99: [[], []] };
    for (let rep = 0; rep < REPS; rep++) {
      for (const [i, fn] of [product, bare].entries()) {
        const xs = await openLoop(rate, seconds, fn);
        stats.p50[i].push(median(xs));
        stats.p99[i].push(quantile(xs, 0.99));
      }
      console.log(`  ${rate}/s rep ${rep + 1}: p50 ${stats.p50[0].at(-1).toFixed(1)} vs ${stats.p50[1].at(-1).toFixed(1)} ms`);
    }
    rows.push(row(`trigger → first instruction p50, ${rate}/s`, 'ms', ...stats.p50, { kind: 'plus-max', value: 10 }));
    rows.push(row(`trigger → first instruction p99, ${rate}/s`, 'ms', ...stats.p99, { kind: 'ratio-max', value: 1.3 }));
  }
  return rows;
}

/** 3: the accepted trigger (HTTP 202) against `client.workflow.start` returning; sequential, medians per rep. */
async function acceptedScenario(ctx) {
  const task = await createTask(ctx, 'perf-accepted', { command: 'true' });
  const n = Number(process.env.BENCH_ACCEPTED_RUNS || 40);
  const product = async () => {
    const t0 = performance.now();
    const run = await trigger(ctx, task.id);
    const ms = performance.now() - t0;
    await ctx.waiter.wait(run.id);
    return ms;
  };
  const bare = async () => {
    const t0 = performance.now();
    const handle = await ctx.client.workflow.start('baselineWorkflow', {
      taskQueue: ctx.baselineQueue,
      workflowId: `perf-${randomBytes(6).toString('hex')}`,
      args: ['true', []],
    });
    const ms = performance.now() - t0;
    await handle.result();
    return ms;
  };
  for (let i = 0; i < 10; i++) {
    await product();
    await bare();
  }
  const p = [];
  const b = [];
  for (let rep = 0; rep < REPS; rep++) {
    const xs = [];
    const ys = [];
    for (let i = 0; i < n; i++) {
      xs.push(await product());
      ys.push(await bare());
    }
    p.push(median(xs));
    b.push(median(ys));
  }
  return [row('trigger accepted (202 vs client.start), median', 'ms', p, b, { kind: 'plus-max', value: 5 })];
}

/**
 * 6: keyset pages of the run list over many runs and 100 tenants (inserted directly), through the API (auth,
 * rate limit, query, JSON), against the same SQL through `pg`. Scales: BENCH_RUNLIST_SCALES (1000000).
 */
async function runListScenario(ctx) {
  const scales = (process.env.BENCH_RUNLIST_SCALES || '1000000').split(',').map(Number);
  const { Client: PgClient } = require('pg');
  const pg = new PgClient({ connectionString: ctx.databaseUrl });
  await pg.connect();
  const tenants = [];
  for (let t = 0; t < 100; t++) {
    const [tenant] = await ctx.ds.query(
      `INSERT INTO tenants (slug, name, max_concurrent_runs, max_tasks, rate_limit_per_minute) VALUES ($1, $1, 100, 100, 100000000) RETURNING id`,
      [`perf-list-${t}`],
    );
    const tasks = await ctx.ds.query(
      `INSERT INTO tasks (tenant_id, name, executor, spec, timeout_seconds, retry_policy)
       SELECT $1, 'list-' || i, 'shell', '{"command":"true"}', 60, '{}' FROM generate_series(1, 10) i RETURNING id`,
      [tenant.id],
    );
    tenants.push({ id: tenant.id, tasks: tasks.map((x) => x.id), headers: t < 5 ? await tenantKey(ctx, tenant.id) : null });
  }
  // Run n of a batch goes to tenant n % 100 and its task (n / 100) % 10.
  await pg.query(`CREATE TEMP TABLE perf_list_tasks (n int PRIMARY KEY, tenant_id uuid, task_id uuid)`);
  await pg.query(
    `INSERT INTO perf_list_tasks SELECT (k - 1) * 100 + (t - 1), tenants[t], tasks[t][k]
       FROM (SELECT $1::uuid[] AS tenants, $2::uuid[][] AS tasks) x, generate_series(1, 100) t, generate_series(1, 10) k`,
    [tenants.map((t) => t.id), tenants.map((t) => t.tasks)],
  );
  const rows = [];
  let inserted = 0;
  for (const scale of scales) {
    const t0 = Date.now();
    for (; inserted < scale; inserted += 100_000) {
      // 100,000 runs per statement spread over the 100 tenants and their 10 tasks, over the last 90 days.
      await pg.query(
        `INSERT INTO runs (tenant_id, task_id, task_version, trigger, status, workflow_id, created_at, queued_at, updated_at, started_at, finished_at)
         SELECT t.tenant_id, t.task_id, 1, 'manual', (ARRAY['succeeded','succeeded','succeeded','failed','cancelled'])[1 + (i / 1000) % 5],
                'perf-list-' || gen_random_uuid(), at, at, at, at, at + interval '1 second'
           FROM (SELECT i, now() - random() * interval '90 days' AS at FROM generate_series(1, 100000) i) s
           JOIN perf_list_tasks t ON t.n = s.i % 1000`,
      );
    }
    await pg.query(`ANALYZE runs`);
    console.log(`  ${scale} runs inserted in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    const probe = tenants.filter((t) => t.headers);
    const queries = [
      ['no filter', () => ({})],
      ['task filter', (t) => ({ taskId: t.tasks[3] })],
      ['status filter', () => ({ status: 'failed' })],
    ];
    for (const [label, filter] of queries) {
      const viaApi = async (t) => {
        let cursor;
        const times = [];
        for (let page = 0; page < 5; page++) {
          const q = new URLSearchParams({ limit: '50', ...filter(t), ...(cursor ? { cursor } : {}) });
          const t0 = performance.now();
          const res = await fetch(`${ctx.base}/v1/runs?${q}`, { headers: t.headers });
          const body = await res.json();
          times.push(performance.now() - t0);
          if (res.status !== 200) throw new Error(`run list answered ${res.status}: ${JSON.stringify(body)}`);
          cursor = body.nextCursor;
          if (!cursor) break;
        }
        return times;
      };
      const viaPg = async (t) => {
        const f = filter(t);
        const times = [];
        let after = null;
        for (let page = 0; page < 5; page++) {
          const params = [t.id];
          let where = 'tenant_id = $1';
          if (f.taskId) {
            params.push(f.taskId);
            where += ` AND task_id = $${params.length}`;
          }
          if (f.status) {
            params.push(f.status);
            where += ` AND status = $${params.length}`;
          }
          if (after) {
            params.push(after.created_at, after.id);
            where += ` AND (created_at, id) < ($${params.length - 1}, $${params.length})`;
          }
          const t0 = performance.now();
          const { rows: page50 } = await pg.query(`SELECT * FROM runs WHERE ${where} ORDER BY created_at DESC, id DESC LIMIT 51`, params);
          times.push(performance.now() - t0);
          if (page50.length < 51) break;
          after = page50[49];
        }
        return times;
      };
      const perRep = async (fn) => {
        const xs = [];
        for (let i = 0; i < 40; i++) xs.push(...(await fn(probe[i % probe.length])));
        return quantile(xs, 0.99);
      };
      await perRep(viaApi);
      await perRep(viaPg);
      const p = [];
      const b = [];
      for (let rep = 0; rep < REPS; rep++) {
        p.push(await perRep(viaApi));
        b.push(await perRep(viaPg));
      }
      rows.push(row(`run list p99 at ${scale / 1e6}M, ${label}`, 'ms', p, b, { kind: 'abs-max', value: 5 }));
    }
  }
  await pg.query(`DELETE FROM runs WHERE workflow_id LIKE 'perf-list-%'`);
  await pg.end();
  return rows;
}

/** 7: worker RSS idle, with 1,000 workflows open in the cache, with 64 concurrent shell tasks. */
async function memoryScenario(ctx) {
  const task = await createTask(ctx, 'perf-sleep', { command: 'sleep', args: ['20'] });
  const reps = Number(process.env.BENCH_MEMORY_REPS || 3);
  const out = { idle: [[], []], cached: [[], []], shell: [[], []] };
  for (let rep = 0; rep < reps; rep++) {
    await ctx.restartWorkers();
    await sleep(3000);
    out.idle[0].push(rssMiB(ctx.worker.child.pid));
    out.idle[1].push(rssMiB(ctx.baseline.child.pid));

    // 64 shell tasks at once: `sleep 20` each.
    const runs = await Promise.all(Array.from({ length: 64 }, () => trigger(ctx, task.id)));
    await until(
      async () =>
        (await ctx.ds.query(`SELECT count(*)::int AS n FROM runs WHERE id = ANY($1) AND status = 'running'`, [runs.map((r) => r.id)]))[0]
          .n === 64,
      60_000,
      '64 product runs running',
    );
    await sleep(2000);
    out.shell[0].push(rssMiB(ctx.worker.child.pid));
    await Promise.all(runs.map((r) => ctx.waiter.wait(r.id)));
    const handles = await Promise.all(
      Array.from({ length: 64 }, () =>
        ctx.client.workflow.start('baselineWorkflow', {
          taskQueue: ctx.baselineQueue,
          workflowId: `perf-${randomBytes(6).toString('hex')}`,
          args: ['sleep', ['20']],
        }),
      ),
    );
    await sleep(4000);
    out.shell[1].push(rssMiB(ctx.baseline.child.pid));
    await Promise.all(handles.map((h) => h.result()));

    // 1,000 open workflows: product runs waiting for a slot (a tenant allowed one, held by a long run), bare
    // workflows on a timer.
    const [tenant] = await ctx.ds.query(
      `INSERT INTO tenants (slug, name, max_concurrent_runs, max_tasks, rate_limit_per_minute) VALUES ($1, $1, 1, 10, 100000000) RETURNING id`,
      [`perf-mem-${rep}-${randomBytes(2).toString('hex')}`],
    );
    const tctx = { ...ctx, headers: await tenantKey(ctx, tenant.id) };
    const holder = await createTask(tctx, 'holder', { command: 'sleep', args: ['600'] });
    const held = await createTask(tctx, 'held', { command: 'true' });
    await trigger(tctx, holder.id);
    await closedLoop(999, 32, () => trigger(tctx, held.id));
    await until(
      async () =>
        (await ctx.ds.query(`SELECT count(*)::int AS n FROM runs WHERE tenant_id = $1 AND workflow_id IS NOT NULL`, [tenant.id]))[0].n ===
        1000,
      120_000,
      '1000 product runs recorded',
    );
    await sleep(5000);
    out.cached[0].push(rssMiB(ctx.worker.child.pid));
    const idle = await closedLoop(1000, 32, () =>
      ctx.client.workflow.start('baselineIdleWorkflow', {
        taskQueue: ctx.baselineQueue,
        workflowId: `perf-idle-${randomBytes(6).toString('hex')}`,
      }),
    );
    await sleep(5000);
    out.cached[1].push(rssMiB(ctx.baseline.child.pid));
    const wfIds = (await ctx.ds.query(`SELECT workflow_id FROM runs WHERE tenant_id = $1`, [tenant.id])).map((r) => r.workflow_id);
    await closedLoop(wfIds.length, 32, (i) =>
      ctx.client.workflow
        .getHandle(wfIds[i])
        .terminate('bench over')
        .catch(() => undefined),
    );
    await closedLoop(idle.length, 32, (i) => idle[i].terminate('bench over').catch(() => undefined));
    console.log(
      `  rep ${rep + 1}: idle ${out.idle[0].at(-1)} / ${out.idle[1].at(-1)} MiB, 64 shell ${out.shell[0].at(-1)} / ${out.shell[1].at(-1)}, 1000 cached ${out.cached[0].at(-1)} / ${out.cached[1].at(-1)}`,
    );
  }
  return [
    row('worker RSS idle', 'MiB', ...out.idle, { kind: 'ratio-max', value: 1.2 }),
    row('worker RSS, 1,000 open workflows', 'MiB', ...out.cached, { kind: 'ratio-max', value: 1.2 }),
    row('worker RSS, 64 concurrent shell tasks', 'MiB', ...out.shell, { kind: 'ratio-max', value: 1.2 }),
  ];
}

/**
 * 8: tenant B's single runs (queued → started from its record) alone and during tenant A's burst of
 * BENCH_BURST (1,000) `sleep 1` runs, A limited to 50 at once. The baseline is B alone.
 */
async function fairnessScenario(ctx) {
  const burst = Number(process.env.BENCH_BURST || 1000);
  const reps = Number(process.env.BENCH_FAIRNESS_REPS || 3);
  const alone = [];
  const during = [];
  const worst = [];
  for (let rep = 0; rep < reps; rep++) {
    const mk = async (label, limit) => {
      const [t] = await ctx.ds.query(
        `INSERT INTO tenants (slug, name, max_concurrent_runs, max_tasks, rate_limit_per_minute) VALUES ($1, $1, $2, 10, 100000000) RETURNING id`,
        [`perf-fair-${label}-${rep}-${randomBytes(2).toString('hex')}`, limit],
      );
      const headers = await tenantKey(ctx, t.id);
      const task = await createTask(
        { ...ctx, headers },
        `fair-${label}`,
        label === 'a' ? { command: 'sleep', args: ['1'] } : { command: 'true' },
      );
      return { id: t.id, headers, task };
    };
    const a = await mk('a', 50);
    const b = await mk('b', 10);
    const bRuns = async () => {
      const waits = [];
      for (let i = 0; i < 10; i++) {
        const run = await trigger({ ...ctx, headers: b.headers }, b.task.id);
        const [r] = await waitRecord(ctx, run.id);
        waits.push(new Date(r.started_at).getTime() - new Date(r.queued_at).getTime());
      }
      return waits;
    };
    const x = await bRuns();
    let submitted = 0;
    const burstDone = closedLoop(burst, 32, async () => {
      await trigger({ ...ctx, headers: a.headers }, a.task.id);
      submitted++;
    });
    await until(async () => submitted >= 100, 60_000, 'burst under way');
    const y = await bRuns();
    await burstDone;
    await endOpenRuns(ctx, a.id, 'tenant A');
    alone.push(median(x));
    during.push(median(y));
    worst.push(Math.max(...y));
    console.log(`  rep ${rep + 1}: B alone p50 ${median(x)} ms, during A's burst p50 ${median(y)} ms, worst ${Math.max(...y)} ms`);
  }
  return [
    row("tenant B queued → started p50, during A's burst vs alone", 'ms', during, alone, { kind: 'ratio-max', value: 3 }),
    row("tenant B queued → started worst, during A's burst", 'ms', worst, null, { kind: 'abs-max', value: 2000 }),
  ];
}

/**
 * 4: schedule lateness. BENCH_SCHEDULES (100) interval schedules per side, every BENCH_SCHEDULE_EVERY (10) s with
 * their offsets spread over the interval, BENCH_SCHEDULE_SECONDS (120) of firing per side in REPS windows that
 * alternate: one side's schedules are paused while the other's fire. Product: schedules through the API on a
 * task running `date +%s%N`; baseline: the same Temporal Schedules (interval, offset, overlap skip, 60 s catch-up)
 * created directly for the bare workflow. Lateness: a fire's nominal time → the command's own clock.
 */
async function schedulesScenario(ctx) {
  const n = Number(process.env.BENCH_SCHEDULES || 100);
  const every = Number(process.env.BENCH_SCHEDULE_EVERY || 10);
  const windowMs = (Number(process.env.BENCH_SCHEDULE_SECONDS || 120) * 1000) / REPS;
  // Temporal keeps a schedule's last 10 actions; the baseline's fires are read from them after each window.
  if (windowMs / 1000 / every > 9) throw new Error('bench: a schedule window may hold at most 9 fires of one schedule');
  const task = await createTask(ctx, 'perf-sched', { command: 'date', args: ['+%s%N'] });
  const tag = randomBytes(3).toString('hex');
  const product = await closedLoop(n, 8, (i) =>
    call(ctx, 'POST', '/v1/schedules', {
      name: `perf-sched-${tag}-${i}`,
      taskId: task.id,
      spec: { intervals: [{ everySeconds: every, offsetSeconds: i % every }] },
      paused: true,
    }),
  );
  const baseline = await closedLoop(n, 8, (i) =>
    ctx.client.schedule.create({
      scheduleId: `perf-sched-${tag}-${i}`,
      spec: { intervals: [{ every: `${every}s`, offset: `${i % every}s` }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'baselineWorkflow',
        taskQueue: ctx.baselineQueue,
        workflowId: `perf-sched-${tag}-${i}`,
        args: ['date', ['+%s%N']],
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '60s' },
      state: { paused: true },
    }),
  );
  const lateness = (clock, scheduledAt) => Number(BigInt(clock.trim()) - BigInt(scheduledAt.getTime()) * 1_000_000n) / 1e6;
  const ids = product.map((s) => s.id);
  const productHandles = product.map((s) => ctx.client.schedule.getHandle(s.temporalScheduleId));
  const productWindow = async (ms) => {
    const from = new Date();
    await closedLoop(n, 8, (i) => call(ctx, 'POST', `/v1/schedules/${ids[i]}/resume`, {}));
    await sleep(ms);
    await closedLoop(n, 8, (i) => call(ctx, 'POST', `/v1/schedules/${ids[i]}/pause`, {}));
    // Every fire Temporal took in the window, whether its workflow has written its record yet or not (a fire
    // behind the worker's backlog has not): counted as the baseline's are, and all of them final before the
    // baseline's window starts, so that none of the product's work runs in it.
    await sleep(2000);
    const fired = (await closedLoop(n, 8, async (i) => (await productHandles[i].describe()).info.recentActions))
      .flat()
      .filter((a) => a.scheduledAt.getTime() >= from.getTime())
      .map((a) => a.action.workflow.workflowId);
    await until(
      async () =>
        (await ctx.ds.query(`SELECT count(*)::int AS n FROM runs WHERE workflow_id = ANY($1) AND status = ANY($2)`, [fired, FINAL]))[0]
          .n === fired.length,
      RUN_DEADLINE_MS,
      `${fired.length} scheduled product runs final`,
    );
    const rows = await ctx.ds.query(`SELECT id, status, stdout, scheduled_at FROM runs WHERE workflow_id = ANY($1)`, [fired]);
    for (const r of rows) if (r.status !== 'succeeded') throw new Error(`bench: scheduled run ${r.id} ${r.status}`);
    return rows.map((r) => lateness(r.stdout, new Date(r.scheduled_at)));
  };
  const baselineWindow = async (ms) => {
    const from = Date.now();
    await closedLoop(n, 8, (i) => baseline[i].unpause());
    await sleep(ms);
    await closedLoop(n, 8, (i) => baseline[i].pause());
    await sleep(2000);
    const fires = (await closedLoop(n, 8, async (i) => (await baseline[i].describe()).info.recentActions))
      .flat()
      .filter((a) => a.scheduledAt.getTime() >= from);
    return closedLoop(fires.length, 16, async (i) => {
      const { workflowId } = fires[i].action.workflow;
      const { out } = await withDeadline(ctx.client.workflow.getHandle(workflowId).result(), `scheduled baseline workflow ${workflowId}`);
      return lateness(out, fires[i].scheduledAt);
    });
  };
  await productWindow(every * 1000);
  await baselineWindow(every * 1000);
  const p50 = [[], []];
  const p99 = [[], []];
  const fires = [0, 0];
  for (let rep = 0; rep < REPS; rep++) {
    for (const [i, fn] of [productWindow, baselineWindow].entries()) {
      const xs = await fn(windowMs);
      if (!xs.length) throw new Error('bench: a schedule window saw no fire');
      fires[i] += xs.length;
      p50[i].push(median(xs));
      p99[i].push(quantile(xs, 0.99));
    }
    console.log(
      `  rep ${rep + 1}: lateness p50 ${p50[0].at(-1).toFixed(1)} vs ${p50[1].at(-1).toFixed(1)} ms, p99 ${p99[0].at(-1).toFixed(0)} vs ${p99[1].at(-1).toFixed(0)} ms`,
    );
  }
  console.log(
    `  fires measured: product ${fires[0]}, baseline ${fires[1]} (about ${Math.round((REPS * n * windowMs) / 1000 / every)} each expected)`,
  );
  await closedLoop(n, 8, (i) => call(ctx, 'DELETE', `/v1/schedules/${ids[i]}`));
  await closedLoop(n, 8, (i) => baseline[i].delete());
  const label = `${n} schedules every ${every} s`;
  return [
    {
      ...row(`schedule lateness p50, ${label}`, 'ms', ...p50, { kind: 'plus-max', value: 50 }),
      fires: { product: fires[0], baseline: fires[1] },
    },
    row(`schedule lateness p99, ${label}`, 'ms', ...p99, { kind: 'none' }),
  ];
}

/**
 * 5: the API under load. BENCH_API_RATE (200) requests/s for BENCH_API_SECONDS (60), open loop: 80 % run-list
 * pages (first and second page, keyset) of a tenant with 10,000 runs, 20 % triggers of `true`, while scenario 1
 * runs at half load (BENCH_API_BACKGROUND, 16 in flight). Baseline, in its own phase after the product's: the
 * same list SQL through `pg` and `client.workflow.start` of the bare workflow, with the bare closed loop beside
 * it. The two phases do not alternate: the product's triggers outrun its workers (scenario 1) and leave a
 * backlog, which is ended before the baseline phase. Repetitions: REPS windows of equal length in each phase.
 */
async function apiLoadScenario(ctx) {
  const seconds = Number(process.env.BENCH_API_SECONDS || 60);
  const rate = Number(process.env.BENCH_API_RATE || 200);
  const background = Number(process.env.BENCH_API_BACKGROUND ?? 16);
  // One request in BENCH_API_TRIGGER_EVERY (5) is a trigger; 0: none.
  const triggerEvery = Number(process.env.BENCH_API_TRIGGER_EVERY ?? 5);
  const [tenant] = await ctx.ds.query(
    `INSERT INTO tenants (slug, name, max_concurrent_runs, max_tasks, rate_limit_per_minute) VALUES ($1, $1, 1000, 10, 100000000) RETURNING id`,
    [`perf-api-${randomBytes(3).toString('hex')}`],
  );
  const tctx = { ...ctx, headers: await tenantKey(ctx, tenant.id) };
  const task = await createTask(tctx, 'api-true', { command: 'true' });
  const bgTask = await createTask(ctx, 'api-background', { command: 'true' });
  await ctx.ds.query(
    `INSERT INTO runs (tenant_id, task_id, task_version, trigger, status, workflow_id, created_at, queued_at, updated_at, started_at, finished_at)
     SELECT $1, $2, 1, 'manual', 'succeeded', 'perf-api-' || gen_random_uuid(), at, at, at, at, at + interval '1 second'
       FROM (SELECT now() - random() * interval '30 days' AS at FROM generate_series(1, 10000)) s`,
    [tenant.id, task.id],
  );
  await ctx.ds.query(`ANALYZE runs`);
  const { Pool } = require('pg');
  const pool = new Pool({ connectionString: ctx.databaseUrl, max: 10 });

  const started = [];
  // The second page's position, read once: every list request asks for the first page or this one.
  const firstPage = await call(tctx, 'GET', '/v1/runs?limit=50');
  const pages = {
    cursor: firstPage.nextCursor,
    after: (
      await ctx.ds.query(`SELECT id, created_at FROM runs WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC OFFSET 49 LIMIT 1`, [
        tenant.id,
      ])
    )[0],
  };
  const sides = {
    product: {
      list: async (second) => {
        const q = new URLSearchParams({ limit: '50', ...(second ? { cursor: pages.cursor } : {}) });
        const res = await fetch(`${ctx.base}/v1/runs?${q}`, { headers: tctx.headers });
        const body = await res.json();
        if (res.status !== 200) throw new Error(`run list answered ${res.status}: ${JSON.stringify(body).slice(0, 200)}`);
      },
      trigger: async () => {
        await trigger(tctx, task.id);
      },
      background: async () => {
        const run = await trigger(ctx, bgTask.id);
        await ctx.waiter.wait(run.id);
      },
    },
    baseline: {
      list: async (second) => {
        const params = [tenant.id];
        let where = 'tenant_id = $1';
        if (second) {
          params.push(pages.after.created_at, pages.after.id);
          where += ' AND (created_at, id) < ($2, $3)';
        }
        await pool.query(`SELECT * FROM runs WHERE ${where} ORDER BY created_at DESC, id DESC LIMIT 51`, params);
      },
      trigger: async () => {
        started.push(
          await ctx.client.workflow.start('baselineWorkflow', {
            taskQueue: ctx.baselineQueue,
            workflowId: `perf-api-${randomBytes(6).toString('hex')}`,
            args: ['true', []],
          }),
        );
      },
      background: () => baselineRunToEnd(ctx, 'true', []),
    },
  };
  const phase = async (side) => {
    const fns = sides[side];
    const samples = { list: [], trigger: [] };
    const errors = [];
    const errorKinds = {};
    let stop = false;
    let backgroundRuns = 0;
    let backgroundFailures = 0;
    const bg = Promise.all(
      Array.from({ length: background }, async () => {
        while (!stop) {
          try {
            await fns.background();
            backgroundRuns++;
          } catch {
            backgroundFailures++;
          }
        }
      }),
    );
    const cpuBefore = cpuTimes(ctx);
    const t0 = performance.now();
    // Cores busy per process over the sending window itself (2 is all of this machine), read when it ends,
    // whatever the answers still outstanding then are doing.
    let cores;
    const coresRead = sleep(seconds * 1000).then(() => {
      const after = cpuTimes(ctx);
      const elapsed = (performance.now() - t0) / 1000;
      cores = Object.fromEntries(Object.keys(after).map((x) => [x, Number(((after[x] - cpuBefore[x]) / elapsed).toFixed(2))]));
    });
    let k = 0;
    await openLoop(rate, seconds, async () => {
      const i = k++;
      const kind = triggerEvery && i % triggerEvery === triggerEvery - 1 ? 'trigger' : 'list';
      const start = performance.now();
      try {
        await fns[kind](i % 2 === 1);
        samples[kind].push({ at: start - t0, ms: performance.now() - start });
      } catch (err) {
        // A failed request counts in its window's percentiles as never answered.
        samples[kind].push({ at: start - t0, ms: Infinity });
        errors.push(`${kind}: ${err.message}${err.cause ? ` (${err.cause.code ?? err.cause.message})` : ''}`);
        // By kind: an HTTP status the API answered (503 is its load shedding), or how the connection failed.
        const why = /answered (\d{3})/.exec(err.message)?.[1] ?? err.cause?.code ?? err.name;
        errorKinds[why] = (errorKinds[why] ?? 0) + 1;
      }
    });
    await coresRead;
    stop = true;
    await bg;
    // Statistics per window: REPS windows of equal length.
    const perWindow = (xs, f) =>
      Array.from({ length: REPS }, (_, w) => {
        const ms = xs.filter((x) => Math.floor((x.at / (seconds * 1000)) * REPS) === w).map((x) => x.ms);
        return ms.length ? f(ms) : null;
      }).filter((x) => x !== null);
    console.log(
      `  ${side}: ${samples.list.length} list pages, ${samples.trigger.length} triggers, ${errors.length} errors; background ${backgroundRuns} runs done, ${backgroundFailures} not done within ${RUN_DEADLINE_MS / 1000} s`,
    );
    console.log(`    cores busy: ${JSON.stringify(cores)}`);
    if (errors.length) console.log(`    errors by kind: ${JSON.stringify(errorKinds)}`);
    for (const e of errors.slice(0, 5)) console.log(`    ${e}`);
    return {
      listP99: perWindow(samples.list, (ms) => quantile(ms, 0.99)),
      triggerP99: perWindow(samples.trigger, (ms) => quantile(ms, 0.99)),
      // Background runs not done within the run deadline count too: the goal is no error at all.
      errors: errors.length + backgroundFailures,
      errorKinds: { ...errorKinds, ...(backgroundFailures ? { background: backgroundFailures } : {}) },
      cores,
    };
  };
  const p = await phase('product');
  await endOpenRuns(ctx, tenant.id, 'the API-load tenant');
  const b = await phase('baseline');
  await closedLoop(started.length, 32, (i) => started[i].terminate('bench over').catch(() => undefined));
  await pool.end();
  await ctx.ds.query(`DELETE FROM runs WHERE workflow_id LIKE 'perf-api-%'`);
  const label = `${rate} req/s, scenario 1 at ${background} in flight`;
  return [
    {
      ...row(`API under load: run list p99, ${label}`, 'ms', p.listP99, b.listP99, { kind: 'abs-max', value: 25 }),
      coresBusy: { product: p.cores, baseline: b.cores },
    },
    ...(triggerEvery ? [row(`API under load: trigger p99 (202 vs client.start)`, 'ms', p.triggerP99, b.triggerP99, { kind: 'none' })] : []),
    {
      ...row(`API under load: errors`, 'requests', [p.errors], [b.errors], { kind: 'abs-max', value: 0 }),
      errorKinds: { product: p.errorKinds, baseline: b.errorKinds },
    },
  ];
}

/**
 * 9: soak. BENCH_SOAK_TASKS (1,000) tasks of one tenant, BENCH_SOAK_SCHEDULES (100) of them on schedules every
 * BENCH_SOAK_EVERY (60) s, and triggers of the tasks in turn at BENCH_SOAK_RATE (2) per second, for
 * BENCH_SOAK_SECONDS (600). Afterwards the schedules are paused, the runs left to end, and everything reconciled:
 * every accepted trigger has its run and no other manual run exists, every schedule's runs equal the actions
 * Temporal took for it, every run succeeded, and every run's workflow is closed.
 */
async function soakScenario(ctx) {
  const seconds = Number(process.env.BENCH_SOAK_SECONDS || 600);
  const nTasks = Number(process.env.BENCH_SOAK_TASKS || 1000);
  const nSchedules = Number(process.env.BENCH_SOAK_SCHEDULES || 100);
  const every = Number(process.env.BENCH_SOAK_EVERY || 60);
  const rate = Number(process.env.BENCH_SOAK_RATE || 2);
  const [tenant] = await ctx.ds.query(
    `INSERT INTO tenants (slug, name, max_concurrent_runs, max_tasks, rate_limit_per_minute) VALUES ($1, $1, 1000, $2, 100000000) RETURNING id`,
    [`perf-soak-${randomBytes(3).toString('hex')}`, nTasks],
  );
  const tctx = { ...ctx, headers: await tenantKey(ctx, tenant.id) };
  const tasks = await closedLoop(nTasks, 8, (i) => createTask(tctx, `soak-${i}`, { command: 'true' }));
  const stride = Math.max(1, Math.floor(nTasks / nSchedules));
  const schedules = await closedLoop(nSchedules, 8, (i) =>
    call(tctx, 'POST', '/v1/schedules', {
      name: `soak-${i}`,
      taskId: tasks[(i * stride) % nTasks].id,
      spec: { intervals: [{ everySeconds: every, offsetSeconds: i % every }] },
    }),
  );
  const errors = [];
  const accepted = new Map();
  let k = 0;
  await openLoop(rate, seconds, async () => {
    const taskId = tasks[(k++ * 7919) % nTasks].id;
    try {
      accepted.set((await trigger(tctx, taskId)).id, taskId);
    } catch (err) {
      errors.push(err.message);
    }
  });
  await closedLoop(nSchedules, 8, (i) => call(tctx, 'POST', `/v1/schedules/${schedules[i].id}/pause`, { note: 'soak over' }));
  await sleep(3000);
  const quietBy = Date.now() + 300_000;
  const openCount = async () =>
    (await ctx.ds.query(`SELECT count(*)::int AS n FROM runs WHERE tenant_id = $1 AND status <> ALL($2)`, [tenant.id, FINAL]))[0].n;
  while (Date.now() < quietBy && (await openCount()) > 0) await sleep(1000);

  const problems = [];
  const runs = await ctx.ds.query(`SELECT id, task_id, schedule_id, status, workflow_id FROM runs WHERE tenant_id = $1`, [tenant.id]);
  const byId = new Map(runs.map((r) => [r.id, r]));
  for (const [id, taskId] of accepted) {
    const r = byId.get(id);
    if (!r) problems.push(`accepted run ${id} has no record`);
    else if (r.task_id !== taskId) problems.push(`run ${id} is of task ${r.task_id}, triggered for ${taskId}`);
  }
  const manual = runs.filter((r) => r.schedule_id === null).length;
  if (manual !== accepted.size) problems.push(`${manual} manual runs recorded, ${accepted.size} triggers accepted`);
  let fires = 0;
  let skipped = 0;
  for (const s of schedules) {
    const { info } = await ctx.client.schedule.getHandle(s.temporalScheduleId).describe();
    const recorded = runs.filter((r) => r.schedule_id === s.id).length;
    fires += info.numActionsTaken;
    skipped += info.numActionsSkippedOverlap + info.numActionsMissedCatchupWindow;
    if (info.numActionsTaken !== recorded)
      problems.push(`schedule ${s.id}: Temporal took ${info.numActionsTaken} actions, ${recorded} runs recorded`);
  }
  const [{ n: taskCount }] = await ctx.ds.query(`SELECT count(*)::int AS n FROM tasks WHERE tenant_id = $1`, [tenant.id]);
  if (taskCount !== nTasks) problems.push(`${taskCount} tasks recorded, ${nTasks} created`);
  const notSucceeded = runs.filter((r) => r.status !== 'succeeded');
  const failedSamples = notSucceeded.slice(0, 5).map((r) => `run ${r.id} ${r.status}`);
  const workflowStatus = await closedLoop(runs.length, 32, async (i) => {
    try {
      return (await ctx.client.workflow.getHandle(runs[i].workflow_id).describe()).status.name;
    } catch (err) {
      return `not found (${err.message})`;
    }
  });
  const leftRunning = runs.filter((r, i) => !FINAL.includes(r.status) || workflowStatus[i] === 'RUNNING').length;
  const badWorkflows = workflowStatus.filter((s) => s !== 'COMPLETED');
  if (badWorkflows.length) problems.push(`${badWorkflows.length} workflows not completed, e.g. ${badWorkflows[0]}`);
  console.log(
    `  ${runs.length} runs (${accepted.size} triggered, ${fires} fires, ${skipped} fires skipped or missed) of ${taskCount} tasks in ${seconds} s; ${errors.length} errors, ${notSucceeded.length} runs not succeeded, ${leftRunning} left running`,
  );
  for (const p of [...errors.slice(0, 5), ...failedSamples, ...problems.slice(0, 10)]) console.log(`    ${p}`);
  await closedLoop(nSchedules, 8, (i) => call(tctx, 'DELETE', `/v1/schedules/${schedules[i].id}`));
  const label = `${nTasks} tasks, ${seconds} s`;
  return [
    row(`soak errors (rejected triggers, runs not succeeded), ${label}`, 'errors', [errors.length + notSucceeded.length], null, {
      kind: 'abs-max',
      value: 0,
    }),
    row(`soak: tasks, workflows and runs not reconciled`, 'mismatches', [problems.length], null, { kind: 'abs-max', value: 0 }),
    row(`soak: runs or workflows left running`, 'runs', [leftRunning], null, { kind: 'abs-max', value: 0 }),
  ];
}

/**
 * Diagnostic, no goal: the API's CPU per request by what the request does, sequentially (one at a time) so that
 * nothing queues: `/health` (no auth, no I/O: the framework's share), `/v1/me` (the guard and about four reads of
 * its own) and a run-list page of 50 (the guard's four round trips and the list query).
 */
async function apiCostScenario(ctx) {
  const n = Number(process.env.BENCH_API_COST_REQUESTS || 500);
  const [tenant] = await ctx.ds.query(
    `INSERT INTO tenants (slug, name, max_concurrent_runs, max_tasks, rate_limit_per_minute) VALUES ($1, $1, 10, 10, 100000000) RETURNING id`,
    [`perf-cost-${randomBytes(3).toString('hex')}`],
  );
  const headers = await tenantKey(ctx, tenant.id);
  const task = await createTask({ ...ctx, headers }, 'cost', { command: 'true' });
  await ctx.ds.query(
    `INSERT INTO runs (tenant_id, task_id, task_version, trigger, status, workflow_id, created_at, queued_at, updated_at, started_at, finished_at)
     SELECT $1, $2, 1, 'manual', 'succeeded', 'perf-cost-' || gen_random_uuid(), at, at, at, at, at + interval '1 second'
       FROM (SELECT now() - random() * interval '30 days' AS at FROM generate_series(1, 1000)) s`,
    [tenant.id, task.id],
  );
  const rows = [];
  for (const [label, path, h] of [
    ['GET /health (no auth, no I/O)', '/health', {}],
    ['GET /v1/me (the guard and its own reads)', '/v1/me', headers],
    ['GET /v1/runs?limit=50', '/v1/runs?limit=50', headers],
  ]) {
    const once = async () => {
      const res = await fetch(`${ctx.base}${path}`, { headers: h });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`${path} answered ${res.status}`);
    };
    for (let i = 0; i < 50; i++) await once();
    const cpu = [];
    const ms = [];
    for (let rep = 0; rep < REPS; rep++) {
      const before = cpuTimes(ctx);
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await once();
      ms.push((performance.now() - t0) / n);
      const after = cpuTimes(ctx);
      cpu.push(((after.api - before.api) * 1000) / n);
      console.log(`  ${label}: ${ms.at(-1).toFixed(2)} ms per request, API CPU ${cpu.at(-1).toFixed(2)} ms`);
    }
    rows.push(row(`API CPU per request, ${label}`, 'ms', cpu, null, { kind: 'none' }));
    rows.push(row(`latency, one at a time, ${label}`, 'ms', ms, null, { kind: 'none' }));
  }
  await ctx.ds.query(`DELETE FROM runs WHERE workflow_id LIKE 'perf-cost-%'`);
  return rows;
}

// ---------------------------------------------------------------------------------------------- helpers

/**
 * Terminates a tenant's open workflows and waits for the reconciler to end their records, so that the next
 * measurement does not share the machine with them. Bounded: a slow reconciler is reported, not waited for
 * without end.
 */
async function endOpenRuns(ctx, tenantId, who) {
  const open = async () =>
    ctx.ds.query(`SELECT workflow_id FROM runs WHERE tenant_id = $1 AND status IN ('queued', 'running')`, [tenantId]);
  const ids = (await open()).map((r) => r.workflow_id);
  await closedLoop(ids.length, 32, (i) =>
    ctx.client.workflow
      .getHandle(ids[i])
      .terminate('bench over')
      .catch(() => undefined),
  );
  const quietBy = Date.now() + 180_000;
  while (Date.now() < quietBy && (await open()).length > 0) await sleep(1000);
  if (Date.now() >= quietBy) console.log(`  (${who} still had open records after 180 s: what follows overlaps the reconciler)`);
}

/** CPU seconds so far of each part: the API, both workers (with the commands they waited for), the dev server, PostgreSQL, this process. */
function cpuTimes(ctx) {
  const ticks = (pid) => {
    try {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      // utime, stime, cutime, cstime (fields 14–17; index 11–14 after the command name)
      return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
    } catch {
      return 0;
    }
  };
  const postgres = spawnSync('pgrep', ['-x', 'postgres'], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n')
    .filter(Boolean)
    .reduce((sum, pid) => sum + ticks(pid), 0);
  const self = process.cpuUsage();
  return {
    api: ticks(ctx.api.child.pid),
    worker: ticks(ctx.worker.child.pid),
    baselineWorker: ticks(ctx.baseline.child.pid),
    temporal: ticks(ctx.temporalPid),
    postgres,
    loadGenerator: (self.user + self.system) / 1e6,
  };
}

/** CPU milliseconds per run of each part between two readings. */
function cpuPerRun(before, after, n) {
  return Object.fromEntries(Object.keys(after).map((k) => [k, Math.round(((after[k] - before[k]) * 1000) / n)]));
}

function nowNs() {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e3)) * 1000n;
}

async function timed(fn) {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** n calls of fn(i), k at a time; resolves with their results in order. */
async function closedLoop(n, k, fn) {
  const out = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(k, n) }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

/** Calls fn at `rate` per second for `seconds`, whatever the earlier calls are doing; resolves with all results. */
async function openLoop(rate, seconds, fn) {
  const n = Math.round(rate * seconds);
  const t0 = performance.now();
  const calls = [];
  for (let i = 0; i < n; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    calls.push(fn());
  }
  return Promise.all(calls);
}

async function until(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`bench: ${what} not reached within ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function call(ctx, method, path, body) {
  const res = await fetch(`${ctx.base}${path}`, {
    method,
    headers: ctx.headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

const createTask = (ctx, name, shell) =>
  call(ctx, 'POST', '/v1/tasks', {
    name: `${name}-${randomBytes(3).toString('hex')}`,
    executor: 'shell',
    shell,
    retry: { maximumAttempts: 1 },
  });

const trigger = (ctx, taskId) => call(ctx, 'POST', `/v1/tasks/${taskId}/runs`);

async function productRunToEnd(ctx, taskId) {
  const run = await trigger(ctx, taskId);
  const status = await ctx.waiter.wait(run.id);
  if (status !== 'succeeded') throw new Error(`bench run ${run.id} ${status}`);
}

async function baselineRunToEnd(ctx, command, args) {
  const handle = await ctx.client.workflow.start('baselineWorkflow', {
    taskQueue: ctx.baselineQueue,
    workflowId: `perf-${randomBytes(6).toString('hex')}`,
    args: [command, args],
  });
  return withDeadline(handle.result(), `baseline workflow ${handle.workflowId}`);
}

function withDeadline(promise, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`bench: ${what} not done within ${RUN_DEADLINE_MS} ms`)), RUN_DEADLINE_MS);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

async function waitRecord(ctx, runId) {
  await ctx.waiter.wait(runId);
  return ctx.ds.query(`SELECT status, stdout, queued_at, started_at FROM runs WHERE id = $1`, [runId]);
}

/** An admin key for a tenant, straight in the database. */
async function tenantKey(ctx, tenantId) {
  const key = apiKeyFromString(generateApiKey().key);
  await ctx.ds.query(`INSERT INTO api_keys (tenant_id, name, prefix, secret_hash, role) VALUES ($1, 'bench', $2, $3, 'admin')`, [
    tenantId,
    key.prefix,
    key.secretHash,
  ]);
  return { 'x-api-key': key.key, 'content-type': 'application/json' };
}

/**
 * Resolves each run's promise when its record is final: one query for all the runs outstanding, every 10 ms.
 * Counting in the database instead of polling the API keeps the load generator's requests to triggers.
 */
function createRunWaiter(ds) {
  const pending = new Map();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      if (pending.size) {
        const rows = await ds.query(`SELECT id, status FROM runs WHERE id = ANY($1::uuid[]) AND status = ANY($2)`, [
          [...pending.keys()],
          FINAL,
        ]);
        for (const r of rows) {
          pending.get(r.id)?.(r.status);
          pending.delete(r.id);
        }
      }
      await sleep(10);
    }
  })();
  return {
    wait: (runId) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(runId);
          reject(new Error(`bench: run ${runId} not final within ${RUN_DEADLINE_MS} ms`));
        }, RUN_DEADLINE_MS);
        pending.set(runId, (status) => {
          clearTimeout(timer);
          resolve(status);
        });
      }),
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}

function rssMiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(m[1]) / 1024);
}

/** Extra node flags for a process, e.g. BENCH_WORKER_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' for a CPU profile. */
function nodeArgs(variable) {
  return (process.env[variable] ?? '').split(' ').filter(Boolean);
}

async function httpOk(url) {
  try {
    return (await fetch(url)).ok;
  } catch {
    return false;
  }
}

async function startProcess(name, args, env, ready) {
  let out = '';
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (out += c));
  const deadline = Date.now() + 60_000;
  while (!(await ready(out))) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${out.slice(-2000)}`);
    if (Date.now() > deadline) throw new Error(`${name} not ready within 60 s:\n${out.slice(-2000)}`);
    await sleep(200);
  }
  const exited = new Promise((r) => child.once('exit', r));
  return {
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await Promise.race([exited, sleep(15_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/** A table row: product and baseline per repetition, their medians, min, max and the ratio of the medians. */
function row(metric, unit, product, baseline, goal) {
  const s = (xs) => (xs ? { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), values: xs } : null);
  const p = s(product);
  const b = s(baseline);
  const ratio = b ? p.median / b.median : null;
  let met;
  if (goal.kind === 'ratio-min') met = ratio >= goal.value;
  else if (goal.kind === 'ratio-max') met = ratio <= goal.value;
  else if (goal.kind === 'plus-max') met = p.median <= b.median + goal.value;
  else if (goal.kind === 'abs-max') met = p.median <= goal.value;
  else met = null;
  const goalText = {
    'ratio-min': `≥ ${goal.value}×`,
    'ratio-max': `≤ ${goal.value}×`,
    'plus-max': `≤ baseline + ${goal.value} ${unit}`,
    'abs-max': `≤ ${goal.value} ${unit}`,
    none: '—',
  }[goal.kind];
  return { metric, unit, product: p, baseline: b, ratio, goal: goalText, met };
}

function printTable(name, rows) {
  const f = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  const cell = (s, unit) => (s ? `${f(s.median)} ${unit} (${f(s.min)}–${f(s.max)})` : '—');
  console.log(`\n${name}: median (min–max) over repetitions`);
  console.log(`| metric | product | baseline | ratio | goal | met |\n|---|---|---|---|---|---|`);
  for (const r of rows)
    console.log(
      `| ${r.metric} | ${cell(r.product, r.unit)} | ${cell(r.baseline, r.unit)} | ${r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`} | ${r.goal} | ${r.met === null ? '—' : r.met ? 'yes' : 'no'} |`,
    );
}

async function describeMachine(ds) {
  const cli = stack.resolveTemporalCli();
  const version = (cmd, args) => spawnSync(cmd, args, { encoding: 'utf8' }).stdout?.trim().split('\n')[0] ?? 'unknown';
  const [{ v }] = await ds.query(`SELECT current_setting('server_version') AS v`);
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    temporalCli: version(cli, ['--version']),
    postgres: `PostgreSQL ${v}`,
    temporalSdk: require('@temporalio/worker/package.json').version,
    commit: version('git', ['-C', root, 'describe', '--always', '--dirty']),
    shellIsolation: process.env.SHELL_ISOLATION || 'sandbox',
  };
}

async function main() {
  const stoppers = [];
  // A rejected promise nobody awaited yet (a burst, an open loop's calls) must not exit past the cleanup.
  process.on('unhandledRejection', (err) => {
    console.error('bench failed:', err);
    stopAll(stoppers).finally(() => process.exit(1));
  });
  const startedAt = new Date();
  try {
    const { temporal, databaseUrl, ds } = await startBenchInfra(root, stoppers, 'ts_perf');
    const machine = await describeMachine(ds);
    const prefix = `perf-${randomBytes(3).toString('hex')}`;
    const apiKey = generateApiKey().key;
    const secretsKey = randomBytes(32).toString('hex');
    const common = {
      PATH: process.env.PATH,
      DATABASE_URL: databaseUrl,
      TEMPORAL_ADDRESS: temporal.address,
      TASK_QUEUE_PREFIX: prefix,
      LOG_LEVEL: 'error',
      SECRETS_KEY: secretsKey,
    };
    const apiPort = await stack.freePort();
    const api = await startProcess(
      'api',
      [...nodeArgs('BENCH_API_NODE_ARGS'), join(root, 'apps/api/dist/main.js')],
      {
        ...common,
        PORT: String(apiPort),
        HOST: '127.0.0.1',
        BOOTSTRAP_API_KEY: apiKey,
        RATE_LIMIT_PER_KEY_PER_MINUTE: '100000000',
        // The API's load-shedding bound: its default unless set for the bench.
        ...(process.env.API_MAX_IN_FLIGHT ? { API_MAX_IN_FLIGHT: process.env.API_MAX_IN_FLIGHT } : {}),
        // Waiting runs of a terminated burst (fairness) are ended by the reconciler: a short interval keeps the bench short.
        RUN_RECONCILE_SECONDS: '5',
      },
      () => httpOk(`http://127.0.0.1:${apiPort}/ready`),
    );
    stoppers.push(api.stop);
    const base = `http://127.0.0.1:${apiPort}`;
    const startWorker = async () => {
      const workerPort = await stack.freePort();
      return startProcess(
        'worker',
        [...nodeArgs('BENCH_WORKER_NODE_ARGS'), join(root, 'apps/worker/dist/main.js')],
        {
          ...common,
          WORKER_HTTP_PORT: String(workerPort),
          WORKER_HTTP_HOST: '127.0.0.1',
          RUN_RECONCILE_SECONDS: '0',
          ...(process.env.SHELL_ISOLATION ? { SHELL_ISOLATION: process.env.SHELL_ISOLATION } : {}),
        },
        () => httpOk(`http://127.0.0.1:${workerPort}/ready`),
      );
    };
    const baselineQueue = `${prefix}-baseline`;
    const startBaseline = () =>
      startProcess(
        'baseline',
        [join(root, 'bench/perf-baseline-worker.mjs')],
        {
          PATH: process.env.PATH,
          TEMPORAL_ADDRESS: temporal.address,
          BASELINE_QUEUE: baselineQueue,
        },
        (out) => out.includes('ready\n'),
      );
    const worker = await startWorker();
    const baseline = await startBaseline();
    stoppers.push(() => ctx.worker.stop());
    stoppers.push(() => ctx.baseline.stop());

    const connection = await Connection.connect({ address: temporal.address });
    stoppers.push(() => connection.close());
    const client = new Client({ connection });
    await ds.query(`UPDATE tenants SET rate_limit_per_minute = 100000000, max_concurrent_runs = 1000, max_tasks = 100000`);
    const headers = { 'x-api-key': apiKey, 'content-type': 'application/json' };
    const waiter = createRunWaiter(ds);
    stoppers.push(() => waiter.stop());
    // A worker keeps terminated workflows in its cache until it needs the room: the memory scenario starts both
    // workers afresh for each repetition.
    const ctx = {
      async restartWorkers() {
        await Promise.all([ctx.worker.stop(), ctx.baseline.stop()]);
        [ctx.worker, ctx.baseline] = await Promise.all([startWorker(), startBaseline()]);
      },
      ds,
      databaseUrl,
      temporalPid: temporal.process.pid,
      base,
      headers,
      client,
      baselineQueue,
      waiter,
      api,
      worker,
      baseline,
      machine,
    };

    const results = [];
    for (const name of chosen) {
      const t0 = Date.now();
      console.log(`\n== ${name}`);
      const rows = await SCENARIOS[name](ctx);
      const result = {
        scenario: name,
        startedAt: new Date(t0).toISOString(),
        seconds: (Date.now() - t0) / 1000,
        machine,
        rows,
      };
      mkdirSync(join(root, 'bench/results'), { recursive: true });
      const file = join(root, 'bench/results', `${startedAt.toISOString().slice(0, 10)}-${name}.json`);
      writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
      printTable(name, rows);
      console.log(`(${result.seconds.toFixed(0)} s; ${file.slice(root.length + 1)})`);
      results.push(result);
    }
    console.log(
      `\nmachine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, node ${machine.node}, ${machine.temporalCli}, ${machine.postgres}, @temporalio ${machine.temporalSdk}, commit ${machine.commit}`,
    );
    console.log(`whole run ${((Date.now() - startedAt.getTime()) / 1000).toFixed(0)} s`);
    for (const r of results) printTable(r.scenario, r.rows);
  } finally {
    await stopAll(stoppers);
  }
}

await main();
process.exit(0);
