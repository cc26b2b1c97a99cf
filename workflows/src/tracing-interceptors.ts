/* Workflow interceptor module (not a workflow): bundled with the workflows, registered on every workflow
 * execution. It continues the trace carried in the start headers (`RunWorkflow:<type>`) and passes it on
 * to activities (`StartActivity:<type>`) and child workflows (`StartChildWorkflowExecution:<type>`). Spans
 * leave the sandbox through the `exporter` sink, which every worker registers (a no-op when tracing is off).
 * Always bundled, tracing on or off, so that every worker runs the same workflow code: the interceptors'
 * SDK flags keep histories recorded without them replaying (test/replay).
 *
 * Span and trace ids come from a named random stream of their own, not from `Math.random()`: the package's
 * own tracer draws them from the workflow's main stream, which `uuid4()` also draws from, so a run started
 * before the interceptors were deployed would draw different ids (a scheduled run's run id among them) when
 * it replays on a worker that has them (test/replay checks every replayed activity input). */
// First: the package's workflow half patches the sandbox (`performance`) that OpenTelemetry's modules read on load.
import {
  OpenTelemetryInboundInterceptor,
  OpenTelemetryInternalsInterceptor,
  OpenTelemetryOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry/lib/workflow';
import { SpanExporter } from '@temporalio/interceptors-opentelemetry/lib/workflow/span-exporter';
import type { IdGenerator } from '@opentelemetry/sdk-trace-base';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { getRandomStream } from '@temporalio/workflow';
import type { WorkflowInterceptorsFactory } from '@temporalio/workflow';

/** Name of the random stream span ids come from: stable, or replays draw different ids (harmless, but noisy). */
const ID_STREAM = 'task-scheduler/otel-ids';

function hex(chars: number): string {
  const stream = getRandomStream(ID_STREAM);
  let out = '';
  while (out.length < chars)
    out += Math.floor(stream.random() * 2 ** 32)
      .toString(16)
      .padStart(8, '0');
  return out.slice(0, chars);
}

const ids: IdGenerator = { generateTraceId: () => hex(32), generateSpanId: () => hex(16) };

let tracer: ReturnType<BasicTracerProvider['getTracer']> | undefined;
function workflowTracer(): ReturnType<BasicTracerProvider['getTracer']> {
  if (!tracer) {
    const provider = new BasicTracerProvider({ idGenerator: ids });
    provider.addSpanProcessor(new SimpleSpanProcessor(new SpanExporter()));
    tracer = provider.getTracer('@temporalio/interceptor-workflow');
  }
  return tracer;
}

/** The package's interceptor with this module's tracer in place of its own (same spans, other ids). */
function withTracer<T extends object>(interceptor: T): T {
  Object.defineProperty(interceptor, 'tracer', { value: workflowTracer(), writable: false });
  return interceptor;
}

export const interceptors: WorkflowInterceptorsFactory = () => ({
  inbound: [withTracer(new OpenTelemetryInboundInterceptor())],
  outbound: [withTracer(new OpenTelemetryOutboundInterceptor())],
  internals: [new OpenTelemetryInternalsInterceptor()],
});
