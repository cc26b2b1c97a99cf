import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '@task-scheduler/config';
import { createDataSource } from '@task-scheduler/db';
import { NativeConnection, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import pino from 'pino';
import { createWorkers } from './worker-runtime';

/**
 * Worker process: connects to PostgreSQL and Temporal, polls the configured
 * queues, and on SIGTERM/SIGINT stops polling, lets in-flight activities
 * finish within SHUTDOWN_GRACE_SECONDS, then exits.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const log = pino({ level: config.LOG_LEVEL, base: { service: 'task-scheduler-worker' } });
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
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'WARN' }), forward: {} } },
  });

  const dataSource = await createDataSource({ url: config.DATABASE_URL, applicationName: 'task-scheduler-worker' }).initialize();
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const bundlePath = join(__dirname, '../../../workflows/dist/workflow-bundle.js');
  const workers = await createWorkers({
    config,
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
  await Promise.all(workers.map((w) => w.run()));
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
