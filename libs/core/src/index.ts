export * from './api-key';
export * from './temporal-ui';
export * from './secrets';
export * from './time-zones';
export * from './shell-limits';
export * from './sandbox-paths';
export * from './run-input';
export * from './pipeline-expressions';
