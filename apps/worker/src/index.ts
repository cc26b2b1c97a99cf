export { createWorkers } from './worker-runtime';
export type { WorkerSetOptions } from './worker-runtime';
