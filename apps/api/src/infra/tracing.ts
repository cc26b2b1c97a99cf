import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import type { Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { registerTracingGlobals } from '@task-scheduler/config';
import type { AppConfig } from '@task-scheduler/config';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry/lib/client';
import type { NextFunction, Request, Response } from 'express';

export const API_TRACING = Symbol('API_TRACING');
export const DEFAULT_API_SERVICE_NAME = 'task-scheduler-api';

/**
 * The API's traces: one server span per HTTP request, the parent of the Temporal client's spans
 * (`StartWorkflow:<type>`, `SignalWorkflow:…`, …), exported over OTLP/HTTP to
 * `<OTEL_EXPORTER_OTLP_ENDPOINT>/v1/traces`. Without the endpoint there is no tracer, no interceptor and no
 * middleware: nothing is recorded or exported.
 */
export class ApiTracing {
  private constructor(
    readonly tracer: Tracer | null,
    private readonly provider: BasicTracerProvider | null,
  ) {}

  static fromConfig(config: Pick<AppConfig, 'OTEL_EXPORTER_OTLP_ENDPOINT' | 'OTEL_SERVICE_NAME'>): ApiTracing {
    const endpoint = config.OTEL_EXPORTER_OTLP_ENDPOINT;
    if (!endpoint) return new ApiTracing(null, null);
    registerTracingGlobals();
    const provider = new BasicTracerProvider({
      resource: new Resource({ [ATTR_SERVICE_NAME]: config.OTEL_SERVICE_NAME ?? DEFAULT_API_SERVICE_NAME }),
      spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${endpoint.replace(/\/+$/, '')}/v1/traces` }))],
    });
    return new ApiTracing(provider.getTracer('task-scheduler-api'), provider);
  }

  get enabled(): boolean {
    return this.tracer !== null;
  }

  /** For the Temporal client: its calls become child spans and carry the context into the workflow's headers. */
  workflowClientInterceptors(): WorkflowClientInterceptor[] {
    return this.tracer ? [new OpenTelemetryWorkflowClientInterceptor({ tracer: this.tracer })] : [];
  }

  /**
   * Express middleware: a server span per request, named `<METHOD> <route template>` once the route is known
   * (`POST /v1/tasks/:id/runs`; the bare method for a request no route matched), active for the rest of the
   * request. A caller's W3C `traceparent` becomes a link of the span, not its parent. Mount it after the request id is set.
   */
  requestSpans(): (req: Request & { id?: string }, res: Response, next: NextFunction) => void {
    const tracer = this.tracer;
    if (!tracer) return (_req, _res, next) => next();
    return (req, res, next) => {
      // A caller's `traceparent` is linked, not continued: a client must not choose the trace id a run is
      // logged and searched under, nor switch its sampling off (flags 00). The request starts its own trace.
      const caller = trace.getSpanContext(propagation.extract(ROOT_CONTEXT, req.headers));
      const parent = ROOT_CONTEXT;
      const span = tracer.startSpan(
        req.method,
        {
          kind: SpanKind.SERVER,
          attributes: { 'http.method': req.method, ...(req.id ? { 'http.request_id': req.id } : {}) },
          ...(caller && trace.isSpanContextValid(caller) ? { links: [{ context: caller }] } : {}),
        },
        parent,
      );
      let ended = false;
      const end = (): void => {
        if (ended) return;
        ended = true;
        const routePath: unknown = (req as { route?: { path?: unknown } }).route?.path;
        if (typeof routePath === 'string') {
          const route = `${req.baseUrl ?? ''}${routePath}`;
          span.updateName(`${req.method} ${route}`);
          span.setAttribute('http.route', route);
        }
        span.setAttribute('http.status_code', res.statusCode);
        if (!res.writableFinished) span.setAttribute('http.aborted', true);
        if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      };
      res.once('finish', end);
      res.once('close', end);
      const active = trace.setSpan(parent, span);
      // Body parsing continues in the request stream's callbacks, outside this call: bind them to the span too.
      context.bind(active, req);
      context.bind(active, res);
      context.with(active, next);
    };
  }

  /** Exports the spans still buffered. */
  async shutdown(): Promise<void> {
    await this.provider?.shutdown();
  }
}
