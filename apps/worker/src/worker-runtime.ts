import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type { AppConfig } from '@task-scheduler/config';
import { taskQueues } from '@task-scheduler/contracts';
import {
  PipelineRecorder,
  RunRecorder,
  createHttpActivities,
  createPipelineActivities,
  createRunActivities,
  createShellActivities,
  prepareIsolation,
} from '@task-scheduler/activities';
import type { AttemptLog, AttemptObserver, Isolation, LiveOutputConfig } from '@task-scheduler/activities';
import { parseSecretsKey } from '@task-scheduler/core';
import { RunOutputStore } from '@task-scheduler/db';
import { Worker } from '@temporalio/worker';
import type { NativeConnection } from '@temporalio/worker';
import type { WorkerOptions } from '@temporalio/worker';
import { createWorkerTracing } from './tracing';
import type { WorkerTracing } from './tracing';
import type { DataSource } from 'typeorm';
import { resolveRunAs } from './executor-environment';
import { meterRunActivities } from './worker-metrics';
import type { WorkerMetrics } from './worker-metrics';

export interface WorkerSetOptions {
  config: AppConfig;
  dataSource: DataSource;
  connection: NativeConnection;
  /** Prebuilt bundle (production) or source path (bundled at start). */
  workflows: { bundlePath: string } | { workflowsPath: string };
  /** Told how shell tasks are isolated here (or that they are not). */
  onShellIsolation?: (how: { isolation: 'sandbox' | 'none'; cgroups?: string }) => void;
  /**
   * Tracing of these workers; built from the config when absent. A process that wants its last spans
   * exported on exit passes its own and shuts it down after the workers stop.
   */
  tracing?: WorkerTracing;
  /** The worker's log: each attempt's start and end at info (none when absent). */
  log?: AttemptLog;
  /** The process's metrics: attempts and the runs its workflows record (none when absent). */
  metrics?: WorkerMetrics;
  /** Told how each attempt ended; `metrics`' observer when absent. */
  observer?: AttemptObserver;
}

/**
 * Builds one Temporal worker per configured queue: `workflows` (task-run and
 * pipeline-run workflows plus their record activities), `shell` (the shell executor) and
 * `http` (the HTTP executor and alert webhooks).
 * Deployments choose which queues a process polls with WORKER_QUEUES, so
 * shell-capable workers can be placed and scaled apart.
 */
export async function createWorkers(opts: WorkerSetOptions): Promise<Worker[]> {
  const { config } = opts;
  const queues = taskQueues(config.TASK_QUEUE_PREFIX);
  const identity = config.WORKER_IDENTITY ?? `${process.pid}@${hostname()}`;
  const recorder = new RunRecorder(opts.dataSource);
  const tracing = opts.tracing ?? createWorkerTracing(config);
  const common: Partial<WorkerOptions> = {
    connection: opts.connection,
    namespace: config.TEMPORAL_NAMESPACE,
    identity,
    shutdownGraceTime: `${config.SHUTDOWN_GRACE_SECONDS}s`,
    // Heartbeats carry cancellations back: the SDK's default throttle (80% of
    // the heartbeat timeout) would let a cancelled task run for that long.
    maxHeartbeatThrottleInterval: `${config.HEARTBEAT_SECONDS}s`,
    defaultHeartbeatThrottleInterval: `${config.HEARTBEAT_SECONDS}s`,
    interceptors: {
      activity: tracing.activityInterceptors,
      // A prebuilt bundle has the tracing workflow interceptors baked in (scripts/bundle-workflows.mjs).
      workflowModules: 'workflowsPath' in opts.workflows ? [join(dirname(opts.workflows.workflowsPath), 'tracing-interceptors')] : [],
    },
    sinks: tracing.sinks,
  };
  const secretsKey = config.SECRETS_KEY ? parseSecretsKey(config.SECRETS_KEY) : null;
  const heartbeatMs = config.HEARTBEAT_SECONDS * 1000;
  const output: LiveOutputConfig = {
    store: new RunOutputStore(opts.dataSource),
    capBytes: config.OUTPUT_STORE_CAP_BYTES,
    flushMs: config.OUTPUT_FLUSH_MS,
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
        // Both sets run as local activities of the workflows they serve, so they live on this queue's worker.
        activities: {
          ...meterRunActivities(createRunActivities(recorder), opts.metrics),
          ...createPipelineActivities(new PipelineRecorder(opts.dataSource, config)),
        },
      }),
    );
  }
  if (config.WORKER_QUEUES.includes('shell')) {
    // A worker that cannot isolate does not poll the shell queue at all: it throws, naming what is missing.
    let isolation: Isolation | null = null;
    if (config.SHELL_ISOLATION === 'sandbox') {
      const prepared = await prepareIsolation({
        stateDir: config.SHELL_STATE_DIR,
        uidRange: config.SHELL_UID_RANGE,
        allowCidrs: config.HTTP_ALLOW_CIDRS,
        denyCidrs: config.SHELL_EGRESS_DENY_CIDRS,
        egressDns: config.SHELL_EGRESS_DNS,
        cgroupsRequired: config.SHELL_CGROUPS === 'required',
        bwrapPath: config.BWRAP_PATH,
        defaultLimits: config.SHELL_DEFAULT_LIMITS,
      });
      isolation = prepared.isolation;
      opts.onShellIsolation?.({ isolation: 'sandbox', cgroups: prepared.cgroups });
    } else {
      opts.onShellIsolation?.({ isolation: 'none' });
    }
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
          output,
          log: opts.log,
          observer: opts.observer ?? opts.metrics?.observer,
          historyTailBytes: config.OUTPUT_TAIL_BYTES,
          executor: {
            path: config.SHELL_PATH,
            outputCapBytes: config.OUTPUT_CAP_BYTES,
            tailBytes: config.OUTPUT_TAIL_BYTES,
            killGraceMs: 5000,
            isolation,
            defaultLimits: config.SHELL_DEFAULT_LIMITS,
            runAs: isolation ? null : resolveRunAs(config.SHELL_RUN_AS),
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
          output,
          log: opts.log,
          observer: opts.observer ?? opts.metrics?.observer,
          historyTailBytes: config.OUTPUT_TAIL_BYTES,
          executor: { responseCapBytes: config.OUTPUT_CAP_BYTES, allowCidrs: config.HTTP_ALLOW_CIDRS },
        }),
      }),
    );
  }
  return workers;
}
