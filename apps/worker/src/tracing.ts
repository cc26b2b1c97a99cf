import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { registerTracingGlobals } from '@task-scheduler/config';
import type { AppConfig } from '@task-scheduler/config';
import {
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  makeWorkflowExporter,
} from '@temporalio/interceptors-opentelemetry';
import type { OpenTelemetryWorkflowExporter } from '@temporalio/interceptors-opentelemetry';
import type { InjectedSink, WorkerInterceptors, WorkerOptions } from '@temporalio/worker';
import type { WorkflowInfo } from '@temporalio/workflow';

export const DEFAULT_WORKER_SERVICE_NAME = 'task-scheduler-worker';

/** What a worker set needs to trace its activities and export its workflows' spans. */
export interface WorkerTracing {
  readonly enabled: boolean;
  /** Activity interceptors (none when tracing is off). */
  readonly activityInterceptors: NonNullable<WorkerInterceptors['activity']>;
  /**
   * The `exporter` sink the bundled workflow interceptors (workflows/src/tracing-interceptors.ts) call with
   * finished workflow spans. Registered on every worker, tracing on or off: a workflow calling an
   * unregistered sink makes the worker log an error for every workflow task.
   */
  readonly sinks: NonNullable<WorkerOptions['sinks']>;
  /** Exports the spans still buffered; call once, after the workers have stopped. */
  shutdown(): Promise<void>;
}

/**
 * The package's workflow span sink, given only a few fields of the workflow's info: it copies all it gets onto
 * every workflow span as attributes, and the whole info (memo, search attributes, nested objects) is neither
 * useful on each span nor valid as OTLP attribute values.
 */
function workflowSpanSink(processor: SpanProcessor, resource: Resource): InjectedSink<OpenTelemetryWorkflowExporter> {
  const sink = makeWorkflowExporter(processor, resource);
  return {
    export: {
      fn: (info, spans) => {
        const attributes = {
          temporalWorkflowId: info.workflowId,
          run_id: info.runId,
          temporalWorkflowType: info.workflowType,
          temporalTaskQueue: info.taskQueue,
          temporalNamespace: info.namespace,
          temporalAttempt: info.attempt,
        };
        return sink.export.fn(attributes as unknown as WorkflowInfo, spans);
      },
    },
  };
}

const noopSinks: WorkerTracing['sinks'] = { exporter: { export: { fn: () => undefined } } };

/**
 * Tracing for a worker set: with `OTEL_EXPORTER_OTLP_ENDPOINT`, activity spans (`RunActivity:<type>`) and the
 * workflow spans of the bundled interceptors are batched and sent over OTLP/HTTP to `<endpoint>/v1/traces`;
 * without it nothing is set up and nothing is exported.
 */
export function createWorkerTracing(config: Pick<AppConfig, 'OTEL_EXPORTER_OTLP_ENDPOINT' | 'OTEL_SERVICE_NAME'>): WorkerTracing {
  const endpoint = config.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint) return { enabled: false, activityInterceptors: [], sinks: noopSinks, shutdown: async () => undefined };
  registerTracingGlobals();
  const resource = new Resource({ [ATTR_SERVICE_NAME]: config.OTEL_SERVICE_NAME ?? DEFAULT_WORKER_SERVICE_NAME });
  const processor = new BatchSpanProcessor(new OTLPTraceExporter({ url: `${endpoint.replace(/\/+$/, '')}/v1/traces` }));
  const provider = new BasicTracerProvider({ resource, spanProcessors: [processor] });
  const tracer = provider.getTracer('task-scheduler-worker');
  return {
    enabled: true,
    activityInterceptors: [
      (ctx) => ({
        inbound: new OpenTelemetryActivityInboundInterceptor(ctx, { tracer }),
        // Puts trace_id and span_id on the activity's log lines.
        outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
      }),
    ],
    sinks: { exporter: workflowSpanSink(processor, resource) },
    shutdown: () => provider.shutdown(),
  };
}
