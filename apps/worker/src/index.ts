export { createWorkers } from './worker-runtime';
export type { WorkerSetOptions } from './worker-runtime';
export { findBwrap } from './executor-environment';
