/**
 * Polls `probe` until `done` accepts its value, and returns that value; fails
 * with the last value once `timeoutMs` has passed. For state that real
 * components reach asynchronously (Temporal, workers, the reconciler).
 */
export async function eventually<T>(probe: () => Promise<T> | T, done: (v: T) => boolean, timeoutMs: number, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`condition not met after ${timeoutMs} ms; last value ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
