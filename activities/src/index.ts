export * from './runs';
export * from './shell';
