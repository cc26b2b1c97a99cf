import type { AttemptObserver, RunActivities } from '@task-scheduler/activities';
import { FINAL_RUN_STATUSES, SHELL_LIMIT_NAMES } from '@task-scheduler/contracts';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DataSource } from 'typeorm';

type AttemptEnd = Parameters<AttemptObserver['attemptEnded']>[0];

/** Seconds; attempts run from milliseconds (HTTP) to hours (batch shell jobs). */
const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600];
/** Seconds a schedule fire or an attempt may wait: sub-second when healthy, minutes when workers are short. */
const WAIT_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

export interface WorkerMetricsOptions {
  /**
   * The database to count waiting runs in at each scrape; only a worker polling the workflows queue is given it,
   * so the gauges come from the processes that admit runs. They count the whole deployment, not this process.
   */
  runGauges?: DataSource | null;
  /** Process metrics (CPU, memory, event loop) on this registry: true in a worker process, false in tests. */
  processMetrics?: boolean;
  /** The Temporal SDK's own Prometheus exporter (Runtime telemetry), appended to each scrape when set. */
  sdkMetricsUrl?: string;
}

/**
 * The product's worker metrics: attempts by executor and outcome, their duration and time queued, output bytes,
 * limit kills, schedule fires and runs waiting for a tenant slot. Labels are bounded sets (executor, outcome,
 * stream, limit, trigger): no tenant, task or run ids (docs/operations.md says why).
 */
export class WorkerMetrics {
  readonly registry = new Registry();
  readonly observer: AttemptObserver;

  private readonly runsTriggered = new Counter({
    name: 'task_scheduler_runs_triggered_total',
    help: 'Task runs started, by trigger. Workers count schedule fires and pipeline steps; the API counts manual and retry starts.',
    labelNames: ['trigger'] as const,
    registers: [this.registry],
  });
  private readonly runsFinished = new Counter({
    name: 'task_scheduler_runs_finished_total',
    help: 'Task runs whose workflow recorded a final status, by status.',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  private readonly fireDelay = new Histogram({
    name: 'task_scheduler_schedule_fire_delay_seconds',
    help: "Time from a schedule fire's nominal time to its run being recorded by a worker (schedule lateness).",
    buckets: WAIT_BUCKETS,
    registers: [this.registry],
  });

  private readonly sdkMetricsUrl: string | undefined;
  private readonly sdkUp = new Gauge({
    name: 'task_scheduler_worker_sdk_metrics_up',
    help: "1 when the Temporal SDK's metrics were included in this scrape, 0 when its exporter did not answer.",
    registers: [this.registry],
  });

  constructor(opts: WorkerMetricsOptions = {}) {
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry });
    this.sdkMetricsUrl = opts.sdkMetricsUrl;
    const attempts = new Counter({
      name: 'task_scheduler_attempts_total',
      help: 'Executor attempts ended on this worker, by executor and outcome.',
      labelNames: ['executor', 'outcome'] as const,
      registers: [this.registry],
    });
    const duration = new Histogram({
      name: 'task_scheduler_attempt_duration_seconds',
      help: 'Duration of executor attempts, from start record to end record.',
      labelNames: ['executor'] as const,
      buckets: DURATION_BUCKETS,
      registers: [this.registry],
    });
    const queued = new Histogram({
      name: 'task_scheduler_attempt_queue_seconds',
      help: 'Time from an attempt being scheduled (the run admitted, or its retry due) to a worker starting it.',
      labelNames: ['executor'] as const,
      buckets: WAIT_BUCKETS,
      registers: [this.registry],
    });
    const isolationSetup = new Histogram({
      name: 'task_scheduler_isolation_setup_seconds',
      help: "Time to set up an isolated shell attempt's sandbox (uid lease, cgroup, bubblewrap, network) before its command runs.",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [this.registry],
    });
    const outputBytes = new Counter({
      name: 'task_scheduler_output_bytes_total',
      help: 'Bytes of output attempts printed (shell) or received (HTTP body), by executor and stream.',
      labelNames: ['executor', 'stream'] as const,
      registers: [this.registry],
    });
    const limitKills = new Counter({
      name: 'task_scheduler_limit_kills_total',
      help: 'Shell attempts stopped for crossing a resource limit, by limit.',
      labelNames: ['limit'] as const,
      registers: [this.registry],
    });
    // Zero series, so rates and ratios exist before the first attempt of each kind ends.
    for (const executor of ['shell', 'http'] as const) {
      for (const outcome of ['succeeded', 'failed', 'timed_out', 'cancelled'] as const) attempts.inc({ executor, outcome }, 0);
      for (const stream of ['stdout', 'stderr'] as const) outputBytes.inc({ executor, stream }, 0);
    }
    for (const trigger of ['schedule', 'pipeline'] as const) this.runsTriggered.inc({ trigger }, 0);
    for (const status of FINAL_RUN_STATUSES) this.runsFinished.inc({ status }, 0);

    this.observer = {
      attemptEnded(e: AttemptEnd): void {
        attempts.inc({ executor: e.executor, outcome: e.status });
        duration.observe({ executor: e.executor }, e.durationMs / 1000);
        if (e.queuedMs !== null) queued.observe({ executor: e.executor }, e.queuedMs / 1000);
        outputBytes.inc({ executor: e.executor, stream: 'stdout' }, e.stdoutBytes);
        outputBytes.inc({ executor: e.executor, stream: 'stderr' }, e.stderrBytes);
        if (e.resourceLimit) limitKills.inc({ limit: boundedLimit(e.resourceLimit) });
        if (e.isolationSetupMs !== undefined) isolationSetup.observe(e.isolationSetupMs / 1000);
      },
    };

    const db = opts.runGauges;
    if (db) {
      const gaugeErrors = new Counter({
        name: 'task_scheduler_worker_run_count_errors_total',
        help: 'Scrapes whose run-gauge query failed (the database did not answer); the gauges kept their last values.',
        registers: [this.registry],
      });
      const waiting = new Gauge({
        name: 'task_scheduler_runs_waiting_for_slot',
        help: "Runs queued that wait for one of their tenant's concurrency slots (whole deployment).",
        registers: [this.registry],
      });
      const oldestWaiting = new Gauge({
        name: 'task_scheduler_runs_waiting_for_slot_oldest_seconds',
        help: 'Age of the oldest run waiting for a tenant slot; 0 when none waits (whole deployment).',
        registers: [this.registry],
      });
      new Gauge({
        name: 'task_scheduler_runs_admitted',
        help: 'Runs holding a tenant slot, by status: queued ones wait for an executor worker (whole deployment).',
        labelNames: ['status'] as const,
        registers: [this.registry],
        // One query per scrape for all three: both counts read small partial indexes (runs_tenant_waiting_idx,
        // runs_tenant_admitted_idx), so the cost follows the runs in flight, not the runs ever made.
        async collect() {
          // A database that does not answer must not fail the whole scrape (Prometheus would call the worker
          // down and lose the SDK's metrics too): the gauges keep their last values and the error is counted.
          const rows: { waiting: string; oldest: string | null; queued: string; running: string }[] | null = await db
            .query(
              `SELECT (SELECT count(*) FROM runs WHERE admitted_at IS NULL AND status = 'queued') AS waiting,
                    (SELECT extract(epoch FROM clock_timestamp() - min(queued_at))
                       FROM runs WHERE admitted_at IS NULL AND status = 'queued') AS oldest,
                    count(*) FILTER (WHERE status = 'queued') AS queued,
                    count(*) FILTER (WHERE status = 'running') AS running
               FROM runs WHERE admitted_at IS NOT NULL AND status IN ('queued', 'running')`,
            )
            .catch(() => {
              gaugeErrors.inc();
              return null;
            });
          if (!rows) return;
          const [row] = rows;
          waiting.set(Number(row.waiting));
          oldestWaiting.set(row.oldest === null ? 0 : Math.max(0, Number(row.oldest)));
          this.set({ status: 'queued' }, Number(row.queued));
          this.set({ status: 'running' }, Number(row.running));
        },
      });
    }
  }

  /** A run recorded by a worker first: a schedule's fire or a pipeline step (the API counts the runs it starts). */
  runRecorded(trigger: string, scheduledAt: string | null): void {
    if (trigger !== 'schedule' && trigger !== 'pipeline') return;
    this.runsTriggered.inc({ trigger });
    const nominal = scheduledAt ? Date.parse(scheduledAt) : NaN;
    if (trigger === 'schedule' && Number.isFinite(nominal)) this.fireDelay.observe(Math.max(0, Date.now() - nominal) / 1000);
  }

  runFinished(status: string): void {
    if ((FINAL_RUN_STATUSES as readonly string[]).includes(status)) this.runsFinished.inc({ status });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * This registry's metrics, then the Temporal SDK's (all named `temporal_*`, so no name is exposed twice). An SDK
   * exporter that does not answer leaves its part out and sets `task_scheduler_worker_sdk_metrics_up` to 0.
   */
  async exposition(): Promise<string> {
    let sdk = '';
    if (this.sdkMetricsUrl) {
      try {
        const res = await fetch(this.sdkMetricsUrl, { signal: AbortSignal.timeout(2_000) });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        sdk = await res.text();
        this.sdkUp.set(1);
      } catch {
        this.sdkUp.set(0);
      }
    }
    const own = await this.registry.metrics();
    return sdk ? `${own}\n${sdk}` : own;
  }
}

const LIMITS = new Set(Object.values(SHELL_LIMIT_NAMES));
/** Limit names come from the contract's fixed set; anything else is `other`, so the label stays bounded. */
function boundedLimit(limit: string): string {
  return LIMITS.has(limit) ? limit : 'other';
}

/**
 * The run-record activities, counting the runs a worker records first and the runs it finalizes. Only a new row counts: a duplicate fire (a
 * backfill over a fire that ran) or a fire refused for a disabled task does not.
 */
export function meterRunActivities(activities: RunActivities, metrics: WorkerMetrics | undefined): RunActivities {
  if (!metrics) return activities;
  return {
    ...activities,
    async ensureRunRecord(input, workflowId, temporalRunId, scheduledAt = null) {
      const result = await activities.ensureRunRecord(input, workflowId, temporalRunId, scheduledAt);
      if (result.duplicateOf === null) metrics.runRecorded(input.trigger, scheduledAt);
      return result;
    },
    async finalizeRun(finalization) {
      const result = await activities.finalizeRun(finalization);
      metrics.runFinished(finalization.status);
      return result;
    },
  };
}
