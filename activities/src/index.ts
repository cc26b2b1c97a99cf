export * from './runs';
export * from './shell';
export * from './http';
export { SECRETS_UNAVAILABLE } from './executor-support';
