import { hostname } from 'node:os';
import type { AppConfig } from '@task-scheduler/config';
import { taskQueues } from '@task-scheduler/contracts';
import { RunRecorder, createRunActivities, createShellActivities } from '@task-scheduler/activities';
import { Worker } from '@temporalio/worker';
import type { NativeConnection } from '@temporalio/worker';
import type { WorkerOptions } from '@temporalio/worker';
import type { DataSource } from 'typeorm';

export interface WorkerSetOptions {
  config: AppConfig;
  dataSource: DataSource;
  connection: NativeConnection;
  /** Prebuilt bundle (production) or source path (bundled at start). */
  workflows: { bundlePath: string } | { workflowsPath: string };
}

/**
 * Builds one Temporal worker per configured queue: `workflows` (task-run
 * workflows plus run-record activities) and `shell` (the shell executor).
 * Deployments choose which queues a process polls with WORKER_QUEUES, so
 * shell-capable workers can be placed and scaled apart.
 */
export async function createWorkers(opts: WorkerSetOptions): Promise<Worker[]> {
  const { config } = opts;
  const queues = taskQueues(config.TASK_QUEUE_PREFIX);
  const identity = config.WORKER_IDENTITY ?? `${process.pid}@${hostname()}`;
  const recorder = new RunRecorder(opts.dataSource);
  const common: Partial<WorkerOptions> = {
    connection: opts.connection,
    namespace: config.TEMPORAL_NAMESPACE,
    identity,
    shutdownGraceTime: `${config.SHUTDOWN_GRACE_SECONDS}s`,
  };
  const workers: Worker[] = [];
  if (config.WORKER_QUEUES.includes('workflows')) {
    workers.push(
      await Worker.create({
        ...common,
        connection: opts.connection,
        taskQueue: queues.workflows,
        ...('bundlePath' in opts.workflows
          ? { workflowBundle: { codePath: opts.workflows.bundlePath } }
          : { workflowsPath: opts.workflows.workflowsPath }),
        activities: createRunActivities(recorder),
      }),
    );
  }
  if (config.WORKER_QUEUES.includes('shell')) {
    workers.push(
      await Worker.create({
        ...common,
        connection: opts.connection,
        taskQueue: queues.shell,
        activities: createShellActivities({
          recorder,
          workerIdentity: identity,
          heartbeatMs: config.HEARTBEAT_SECONDS * 1000,
          executor: { path: config.SHELL_PATH, outputCapBytes: config.OUTPUT_CAP_BYTES, killGraceMs: 5000 },
        }),
      }),
    );
  }
  return workers;
}
