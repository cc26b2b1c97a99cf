export * from './runs';
export * from './shell';
export * from './http';
export * from './pipelines';
export { LiveOutput } from './live-output';
export type { LiveOutputOptions } from './live-output';
export { errorFields, maskTail, tailOf } from './executor-support';
export type { AttemptLog, AttemptObserver, ExecutorActivityDeps, LiveOutputConfig } from './executor-support';
