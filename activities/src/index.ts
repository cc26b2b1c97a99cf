export * from './runs';
export * from './shell';
export * from './http';
