import { context, defaultTextMapSetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

// W3C directly, not the global propagator: the task's TRACEPARENT is W3C by contract, whatever else is registered.
const w3c = new W3CTraceContextPropagator();

/**
 * The W3C `traceparent` of the active span (`00-<trace id>-<span id>-<flags>`), for a task to continue the
 * trace: inside an activity that is its `RunActivity` span. Null when there is no valid active span, as when
 * tracing is off.
 */
export function currentTraceparent(): string | null {
  const carrier: Record<string, string> = {};
  w3c.inject(context.active(), carrier, defaultTextMapSetter);
  return carrier.traceparent ?? null;
}

/** `{ [name]: traceparent }` of the active span, or nothing: spread into a task's environment or headers. */
export function traceparentEntry(name: string): Record<string, string> {
  const traceparent = currentTraceparent();
  return traceparent ? { [name]: traceparent } : {};
}
