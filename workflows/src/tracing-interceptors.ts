/* Workflow interceptor module (not a workflow): bundled with the workflows, registered on every workflow
 * execution. It continues the trace carried in the start headers (`RunWorkflow:<type>`) and passes it on
 * to activities (`StartActivity:<type>`) and child workflows (`StartChildWorkflowExecution:<type>`). Spans
 * leave the sandbox through the `exporter` sink, which every worker registers (a no-op when tracing is off).
 * Always bundled, tracing on or off, so that every worker runs the same workflow code: the interceptors'
 * SDK flags keep histories recorded without them replaying (test/replay). */
import {
  OpenTelemetryInboundInterceptor,
  OpenTelemetryInternalsInterceptor,
  OpenTelemetryOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry/lib/workflow';
import type { WorkflowInterceptorsFactory } from '@temporalio/workflow';

export const interceptors: WorkflowInterceptorsFactory = () => ({
  inbound: [new OpenTelemetryInboundInterceptor()],
  outbound: [new OpenTelemetryOutboundInterceptor()],
  internals: [new OpenTelemetryInternalsInterceptor()],
});
