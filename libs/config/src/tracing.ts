import { context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

let registered = false;

/**
 * Context manager and propagator are process-wide in OpenTelemetry (the Temporal interceptors read and write
 * them through `@opentelemetry/api`): registered once per process, by the first API or worker set that traces.
 * Tracer providers are not global: each API instance and worker set has its own, passed explicitly, so several
 * can share one process (the tests do).
 */
export function registerTracingGlobals(): void {
  if (registered) return;
  registered = true;
  const contextManager = new AsyncLocalStorageContextManager().enable();
  if (!context.setGlobalContextManager(contextManager)) contextManager.disable();
  // W3C trace context only: no baggage, which a client could fill with kilobytes that every workflow and
  // activity header (and so every history) would carry.
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
}
