import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig, loggerOptions } from '@task-scheduler/config';
import { createDataSource } from '@task-scheduler/db';
import { NativeConnection, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import pino from 'pino';
import { createWorkerTracing } from './tracing';
import { createWorkers } from './worker-runtime';
import { freePort, startWorkerHttp } from './worker-http';
import { WorkerMetrics } from './worker-metrics';

/**
 * Worker process: connects to PostgreSQL and Temporal, polls the configured
 * queues, and on SIGTERM/SIGINT stops polling, lets in-flight activities
 * finish within SHUTDOWN_GRACE_SECONDS, then exits.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const log = pino(loggerOptions('task-scheduler-worker', config));
  // The SDK's exporter needs a fixed address: a free loopback port, read by the worker's own /metrics.
  const sdkMetricsPort = config.WORKER_HTTP_PORT === -1 ? null : await freePort('127.0.0.1');
  // The app drains on its own signal handlers; the runtime must not race it.
  Runtime.install({
    shutdownSignals: [],
    logger: {
      log: (level, message, meta) => log[level.toLowerCase() as 'info'](meta ?? {}, message),
      trace: (m, meta) => log.trace(meta ?? {}, m),
      debug: (m, meta) => log.debug(meta ?? {}, m),
      info: (m, meta) => log.info(meta ?? {}, m),
      warn: (m, meta) => log.warn(meta ?? {}, m),
      error: (m, meta) => log.error(meta ?? {}, m),
    },
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: 'WARN' }), forward: {} },
      ...(sdkMetricsPort === null
        ? {}
        : {
            // Prometheus conventions (`_total` counters, durations in seconds with the unit in the name).
            metrics: {
              prometheus: {
                bindAddress: `127.0.0.1:${sdkMetricsPort}`,
                countersTotalSuffix: true,
                unitSuffix: true,
                useSecondsForDurations: true,
              },
            },
          }),
    },
  });

  const dataSource = await createDataSource({ url: config.DATABASE_URL, applicationName: 'task-scheduler-worker' }).initialize();
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const bundlePath = join(__dirname, '../../../workflows/dist/workflow-bundle.js');
  const metrics = new WorkerMetrics({
    processMetrics: true,
    runGauges: config.WORKER_QUEUES.includes('workflows') ? dataSource : null,
    ...(sdkMetricsPort === null ? {} : { sdkMetricsUrl: `http://127.0.0.1:${sdkMetricsPort}/metrics` }),
  });
  // Open before the workers are built (bundling takes seconds): live at once, ready once every worker polls.
  const polling: { workers: { getState(): string; options: { taskQueue: string } }[] } = { workers: [] };
  const http =
    config.WORKER_HTTP_PORT === -1
      ? null
      : await startWorkerHttp({
          host: config.WORKER_HTTP_HOST,
          port: config.WORKER_HTTP_PORT,
          metrics: async () => ({ contentType: metrics.contentType, body: await metrics.exposition() }),
          metricsToken: config.METRICS_TOKEN,
          notReady: async () => {
            if (polling.workers.length === 0) return 'starting: the workers are not built yet';
            // STOPPING and DRAINING after SIGTERM: a draining worker takes no new work.
            const idle = polling.workers.find((w) => w.getState() !== 'RUNNING');
            if (idle) return `worker of ${idle.options.taskQueue} is ${idle.getState()}`;
            try {
              await connection.withDeadline(Date.now() + 2_000, () => connection.workflowService.getSystemInfo({}));
              return null;
            } catch (err) {
              return `Temporal does not answer: ${err instanceof Error ? err.message : String(err)}`;
            }
          },
        });
  if (http) log.info({ host: config.WORKER_HTTP_HOST, port: http.port }, 'worker HTTP port open: /metrics, /health, /ready');
  const tracing = createWorkerTracing(config);
  const workers = await createWorkers({
    config,
    log,
    tracing,
    metrics,
    dataSource,
    connection,
    workflows: existsSync(bundlePath) ? { bundlePath } : { workflowsPath: require.resolve('@task-scheduler/workflows') },
    onShellIsolation: ({ isolation, cgroups }) => {
      if (isolation === 'none') {
        log.warn(
          { isolation },
          'SHELL_ISOLATION=none: shell tasks run unisolated, with the network, files and processes of this host; every attempt records isolation "none"',
        );
      } else {
        log.info({ isolation, cgroups }, 'shell tasks run isolated');
      }
    },
  });

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, graceSeconds: config.SHUTDOWN_GRACE_SECONDS }, 'draining: no new work is taken, in-flight work may finish');
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  log.info({ queues: workers.map((w) => w.options.taskQueue), identity: workers[0]?.options.identity }, 'worker polling');
  polling.workers = workers;
  await Promise.all(workers.map((w) => w.run()));
  await http?.close();
  await tracing.shutdown().catch((err: unknown) => log.warn({ err }, 'traces: the last spans could not be exported'));
  await connection.close();
  await dataSource.destroy();
  log.info('worker stopped');
  // Native runtime handles can outlive the workers; the drain is complete, so leave now.
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof ConfigError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
