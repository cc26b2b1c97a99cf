export * from './runs';
export * from './shell';
export * from './http';
export * from './pipelines';
