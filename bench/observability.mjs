// `npm run bench:observability`: what observability costs and how live output feels.
//
// 1. Tracing and metrics on vs off, same process, same dev server and database, alternating A B A B:
//    two product stacks (API + workers), one with METRICS=on, the worker's metrics observer and
//    OTLP traces exported to a local sink (an HTTP server that accepts and counts the export requests),
//    one with METRICS=off, no observer and no tracing. End-to-end latency of a shell run 'echo hello'
//    (HTTP trigger → succeeded visible over HTTP), BENCH_ROUNDS × BENCH_RUNS per side; medians and ratio.
// 2. Streaming latency: a task prints `date +%s%N` every 100 ms (BENCH_LINES lines); a client follows
//    GET /v1/runs/{id}/logs?follow=true and takes, for every line, its arrival time minus the time the
//    task printed (same host clock). p50/p99 over BENCH_STREAM_RUNS runs, at the default OUTPUT_FLUSH_MS.
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { median, quantile, sleep, startBenchInfra, stopAll } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { NativeConnection, Runtime, DefaultLogger } = require('@temporalio/worker');
const { createApp } = require(join(root, 'apps/api/dist/index.js'));
const { createWorkers } = require(join(root, 'apps/worker/dist/index.js'));
const { WorkerMetrics } = require(join(root, 'apps/worker/dist/worker-metrics.js'));
const { loadConfig } = require(join(root, 'libs/config/dist/index.js'));
const { generateApiKey } = require(join(root, 'libs/core/dist/index.js'));

const ROUNDS = Number(process.env.BENCH_ROUNDS || 5);
const PER_ROUND = Number(process.env.BENCH_RUNS || 20);
const STREAM_RUNS = Number(process.env.BENCH_STREAM_RUNS || 5);
const LINES = Number(process.env.BENCH_LINES || 50);
const nowNs = () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));

Runtime.install({ logger: new DefaultLogger('WARN') });
const stoppers = [];
try {
  const { temporal, databaseUrl, ds } = await startBenchInfra(root, stoppers, 'ts_bench_obs');

  // The OTLP sink: accepts every export (as a collector would) and counts requests and bytes.
  const sink = { requests: 0, bytes: 0 };
  const otlp = createServer((req, res) => {
    req.on('data', (c) => (sink.bytes += c.length));
    req.on('end', () => {
      sink.requests++;
      res.setHeader('content-type', 'application/json');
      res.end('{}');
    });
  });
  await new Promise((r) => otlp.listen(0, '127.0.0.1', r));
  stoppers.push(() => new Promise((r) => otlp.close(r)));
  const otlpUrl = `http://127.0.0.1:${otlp.address().port}`;

  const nativeConnection = await NativeConnection.connect({ address: temporal.address });
  stoppers.push(() => nativeConnection.close());
  const apiKey = generateApiKey().key;

  async function productStack(name, on) {
    const config = loadConfig({
      DATABASE_URL: databaseUrl,
      TEMPORAL_ADDRESS: temporal.address,
      TASK_QUEUE_PREFIX: `bench-${name}-${randomBytes(3).toString('hex')}`,
      BOOTSTRAP_API_KEY: apiKey,
      LOG_LEVEL: 'error',
      RATE_LIMIT_PER_KEY_PER_MINUTE: '10000000',
      METRICS: on ? 'on' : 'off',
      ...(on ? { OTEL_EXPORTER_OTLP_ENDPOINT: otlpUrl } : {}),
      ...(process.env.SHELL_ISOLATION ? { SHELL_ISOLATION: process.env.SHELL_ISOLATION } : {}),
    });
    const app = await createApp(config, { logger: false });
    await app.listen(0, '127.0.0.1');
    stoppers.push(() => app.close());
    const api = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    const workers = await createWorkers({
      config,
      dataSource: ds,
      connection: nativeConnection,
      workflows: { bundlePath: join(root, 'workflows/dist/workflow-bundle.js') },
      ...(on ? { metrics: new WorkerMetrics({ runGauges: ds }) } : {}),
    });
    const running = workers.map((w) => w.run());
    stoppers.push(async () => {
      for (const w of workers) w.shutdown();
      await Promise.allSettled(running);
    });
    const headers = { 'x-api-key': apiKey, 'content-type': 'application/json' };
    const task = await (
      await fetch(`${api}/v1/tasks`, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          name: `bench-echo-${name}`,
          executor: 'shell',
          shell: { command: 'echo', args: ['hello'] },
          retry: { maximumAttempts: 1 },
        }),
      })
    ).json();
    if (!task.id) throw new Error(`task not created: ${JSON.stringify(task)}`);
    async function run() {
      const t0 = performance.now();
      const res = await fetch(`${api}/v1/tasks/${task.id}/runs`, { method: 'POST', headers });
      const queued = await res.json();
      if (res.status !== 202) throw new Error(`trigger answered ${res.status}: ${JSON.stringify(queued)}`);
      for (;;) {
        const r = await (await fetch(`${api}/v1/runs/${queued.id}?output=omit`, { headers })).json();
        if (r.status === 'succeeded') return performance.now() - t0;
        if (['failed', 'timed_out', 'cancelled'].includes(r.status)) throw new Error(`bench run ${r.status}: ${r.error}`);
        await sleep(5);
      }
    }
    return { api, headers, run };
  }

  // The first stack created registers the process-wide context manager; both exist before anything is measured.
  const on = await productStack('on', true);
  const off = await productStack('off', false);
  await ds.query(`UPDATE tenants SET rate_limit_per_minute = 10000000`);
  for (let i = 0; i < 5; i++) {
    await on.run();
    await off.run();
  }
  const times = { on: [], off: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < PER_ROUND; i++) {
      times.on.push(await on.run());
      times.off.push(await off.run());
    }
  }
  const m = { on: median(times.on), off: median(times.off) };
  console.log(`\nshell run 'echo hello', ${ROUNDS} rounds × ${PER_ROUND} runs each side, sequential, alternating; medians (p90)`);
  console.log(`  tracing + metrics on : ${m.on.toFixed(1)} ms (${quantile(times.on, 0.9).toFixed(1)})`);
  console.log(`  tracing + metrics off: ${m.off.toFixed(1)} ms (${quantile(times.off, 0.9).toFixed(1)})`);
  console.log(
    `  ratio on/off: ${(m.on / m.off).toFixed(3)}x; OTLP sink got ${sink.requests} export requests, ${(sink.bytes / 1024).toFixed(0)} KiB`,
  );

  // Streaming latency, on the stack with everything on (the heavier one).
  const streamTask = await (
    await fetch(`${on.api}/v1/tasks`, {
      method: 'POST',
      headers: on.headers,
      body: JSON.stringify({
        name: 'bench-stream',
        executor: 'shell',
        shell: { script: `for i in $(seq 1 ${LINES}); do date +%s%N; sleep 0.1; done` },
        retry: { maximumAttempts: 1 },
      }),
    })
  ).json();
  const latencies = [];
  for (let r = 0; r < STREAM_RUNS; r++) {
    const queued = await (await fetch(`${on.api}/v1/tasks/${streamTask.id}/runs`, { method: 'POST', headers: on.headers })).json();
    const res = await fetch(`${on.api}/v1/runs/${queued.id}/logs?follow=true`, {
      headers: on.headers,
      signal: AbortSignal.timeout(120_000),
    });
    const decoder = new TextDecoder();
    let buffer = '';
    let partial = '';
    let lines = 0;
    for await (const part of res.body) {
      const arrived = nowNs();
      buffer += decoder.decode(part, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split('\n').find((l) => l.startsWith('data: '));
        if (!block.includes('event: chunk') || !data) continue;
        const text = partial + JSON.parse(data.slice(6)).text;
        const pieces = text.split('\n');
        partial = pieces.pop();
        for (const p of pieces) {
          if (!/^\d+$/.test(p)) continue;
          latencies.push(Number(arrived - BigInt(p)) / 1e6);
          lines++;
        }
      }
    }
    if (lines !== LINES) throw new Error(`run ${queued.id}: the follower saw ${lines} of ${LINES} lines`);
  }
  console.log(
    `\nlive output: ${STREAM_RUNS} runs × ${LINES} lines (one per 100 ms), echo → SSE client, OUTPUT_FLUSH_MS=200: ` +
      `p50 ${quantile(latencies, 0.5).toFixed(0)} ms, p99 ${quantile(latencies, 0.99).toFixed(0)} ms, max ${Math.max(...latencies).toFixed(0)} ms (${latencies.length} lines)`,
  );
} finally {
  await stopAll(stoppers);
}
process.exit(0);
