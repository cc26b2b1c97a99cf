import { hostname } from 'node:os';
import type { AppConfig } from '@task-scheduler/config';
import { taskQueues } from '@task-scheduler/contracts';
import { RunRecorder, createHttpActivities, createRunActivities, createShellActivities } from '@task-scheduler/activities';
import { parseSecretsKey } from '@task-scheduler/core';
import { Worker } from '@temporalio/worker';
import type { NativeConnection } from '@temporalio/worker';
import type { WorkerOptions } from '@temporalio/worker';
import type { DataSource } from 'typeorm';
import { findBwrap, resolveRunAs } from './executor-environment';

export interface WorkerSetOptions {
  config: AppConfig;
  dataSource: DataSource;
  connection: NativeConnection;
  /** Prebuilt bundle (production) or source path (bundled at start). */
  workflows: { bundlePath: string } | { workflowsPath: string };
}

/**
 * Builds one Temporal worker per configured queue: `workflows` (task-run
 * workflows plus run-record activities), `shell` (the shell executor) and
 * `http` (the HTTP executor and alert webhooks).
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
    // Heartbeats carry cancellations back: the SDK's default throttle (80% of
    // the heartbeat timeout) would let a cancelled task run for that long.
    maxHeartbeatThrottleInterval: `${config.HEARTBEAT_SECONDS}s`,
    defaultHeartbeatThrottleInterval: `${config.HEARTBEAT_SECONDS}s`,
  };
  const secretsKey = config.SECRETS_KEY ? parseSecretsKey(config.SECRETS_KEY) : null;
  const heartbeatMs = config.HEARTBEAT_SECONDS * 1000;
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
          heartbeatMs,
          secretsKey,
          executor: {
            path: config.SHELL_PATH,
            outputCapBytes: config.OUTPUT_CAP_BYTES,
            killGraceMs: 5000,
            runAs: resolveRunAs(config.SHELL_RUN_AS),
            bwrapPath: findBwrap(config.BWRAP_PATH),
          },
        }),
      }),
    );
  }
  if (config.WORKER_QUEUES.includes('http')) {
    workers.push(
      await Worker.create({
        ...common,
        connection: opts.connection,
        taskQueue: queues.http,
        activities: createHttpActivities({
          recorder,
          workerIdentity: identity,
          heartbeatMs,
          secretsKey,
          executor: { responseCapBytes: config.OUTPUT_CAP_BYTES, allowCidrs: config.HTTP_ALLOW_CIDRS },
        }),
      }),
    );
  }
  return workers;
}
