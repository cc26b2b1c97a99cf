import { Injectable } from '@nestjs/common';
import type { PipelineRunTrigger, RunTrigger } from '@task-scheduler/contracts';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Process metrics (CPU, memory, event loop, GC) describe the process, not one application in it: one registry per
 * process, made on first use and shared by every API instance the process hosts (the tests run several), so none
 * of them registers the same name twice.
 */
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** The 401 reasons of the auth guard, as bounded label values; a reason not listed here counts as `other`. */
const AUTH_FAILURE_REASONS: Record<string, string> = {
  'no credential': 'no_credential',
  'malformed API key': 'malformed_api_key',
  'unknown API key prefix': 'unknown_api_key',
  'wrong API key secret': 'wrong_api_key_secret',
  'revoked API key': 'revoked_api_key',
  'expired API key': 'expired_api_key',
  'bearer token sent but JWT is not configured': 'jwt_not_configured',
  'invalid bearer token': 'invalid_bearer_token',
  'credential names an unknown tenant': 'unknown_tenant',
};

/** Schedule reconciler repair kinds, one per list of its report. */
export type ReconcilerRepairKind = 'created' | 'updated' | 'pause_fixed' | 'adopted_pause' | 'adopted_resume' | 'deleted_orphan';

/**
 * The API's Prometheus metrics, in a registry of this application instance (never prom-client's global one).
 * Labels are bounded sets (routes, triggers, reasons): no tenant, task or run ids, see docs/operations.md.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  readonly httpDuration = new Histogram({
    name: 'http_server_request_duration_seconds',
    help: 'Duration of HTTP requests answered by the API, by method, route template and status code.',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private readonly runsTriggered = new Counter({
    name: 'task_scheduler_runs_triggered_total',
    help: 'Task runs started, by trigger. The API counts manual and retry starts; workers count schedule fires and pipeline steps.',
    labelNames: ['trigger'] as const,
    registers: [this.registry],
  });
  private readonly pipelineRunsTriggered = new Counter({
    name: 'task_scheduler_pipeline_runs_triggered_total',
    help: 'Pipeline runs started through the API, by trigger.',
    labelNames: ['trigger'] as const,
    registers: [this.registry],
  });
  private readonly authFailures = new Counter({
    name: 'task_scheduler_auth_failures_total',
    help: 'Requests refused with 401, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  private readonly rateLimitedRequests = new Counter({
    name: 'task_scheduler_rate_limited_total',
    help: 'Requests refused with 429, by the limit that was reached (key or tenant).',
    labelNames: ['scope'] as const,
    registers: [this.registry],
  });
  /** Refused by the API's in-flight bound (common/load-shedding.ts): answered 503 OVERLOADED before any work. */
  readonly overloadedRequests = new Counter({
    name: 'task_scheduler_api_overloaded_total',
    help: 'Requests refused with 503 OVERLOADED because the API process was working on API_MAX_IN_FLIGHT requests.',
    registers: [this.registry],
  });
  /** Requests the API process works on now, as counted against API_MAX_IN_FLIGHT; set by the load-shedding middleware. */
  readonly requestsInFlight = new Gauge({
    name: 'task_scheduler_api_requests_in_flight',
    help: 'Requests the API process is working on now, counted against API_MAX_IN_FLIGHT (health checks, metrics and followed output streams excluded).',
    registers: [this.registry],
  });
  private readonly reconcilerRepairs = new Counter({
    name: 'task_scheduler_schedule_reconciler_repairs_total',
    help: 'Temporal schedules the reconciler repaired or whose Temporal-side change it adopted, by kind.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  private readonly reconcilerErrors = new Counter({
    name: 'task_scheduler_schedule_reconciler_errors_total',
    help: 'Schedules the reconciler could not check or repair in a pass.',
    registers: [this.registry],
  });

  private readonly runRepairs = new Counter({
    name: 'task_scheduler_run_reconciler_repairs_total',
    help: 'Runs whose record the run reconciler ended because their workflow had closed (or was gone), by the status given.',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });

  private readonly alertNotifications = new Counter({
    name: 'task_scheduler_alert_notifications_total',
    help: 'Alert notification delivery attempts, by channel type and outcome (sent, retry, failed).',
    labelNames: ['channel', 'outcome'] as const,
    registers: [this.registry],
  });

  private readonly alertTransitions = new Counter({
    name: 'task_scheduler_alert_transitions_total',
    help: 'Alerts opened (firing), re-notified, escalated and resolved by the API, by rule kind and event.',
    labelNames: ['kind', 'event'] as const,
    registers: [this.registry],
  });

  private readonly retentionDeletions = new Counter({
    name: 'task_scheduler_retention_deleted_total',
    help: 'Rows deleted by the retention job (docs/retention.md), by table.',
    labelNames: ['table'] as const,
    registers: [this.registry],
  });

  constructor() {
    // Zero series for the values alerts and dashboards divide by, so a rate exists before the first event.
    for (const trigger of ['manual', 'retry'] satisfies RunTrigger[]) this.runsTriggered.inc({ trigger }, 0);
    this.reconcilerErrors.inc(0);
  }

  runTriggered(trigger: RunTrigger): void {
    this.runsTriggered.inc({ trigger });
  }

  pipelineRunTriggered(trigger: PipelineRunTrigger): void {
    this.pipelineRunsTriggered.inc({ trigger });
  }

  authFailed(reason: string): void {
    this.authFailures.inc({ reason: AUTH_FAILURE_REASONS[reason] ?? 'other' });
  }

  rateLimited(scope: 'key' | 'tenant'): void {
    this.rateLimitedRequests.inc({ scope });
  }

  reconciled(repairs: Record<ReconcilerRepairKind, number>, errors: number): void {
    for (const [kind, n] of Object.entries(repairs)) if (n > 0) this.reconcilerRepairs.inc({ kind }, n);
    if (errors > 0) this.reconcilerErrors.inc(errors);
  }

  runRepaired(status: string): void {
    this.runRepairs.inc({ status });
  }

  alertNotification(channel: string, outcome: 'sent' | 'retry' | 'failed'): void {
    this.alertNotifications.inc({ channel, outcome });
  }

  alertTransition(kind: string, event: string): void {
    this.alertTransitions.inc({ kind, event });
  }

  retentionDeleted(table: string, rows: number): void {
    this.retentionDeletions.inc({ table }, rows);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition: this process's metrics, then this application's. */
  async exposition(): Promise<string> {
    return `${await processMetrics().metrics()}\n${await this.registry.metrics()}`;
  }
}
