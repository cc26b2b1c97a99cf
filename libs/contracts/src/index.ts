export * from './task-queues';
export * from './search-attributes';
export * from './run';
export * from './task';
export * from './workflow-io';
export * from './schedule';
export * from './pipeline';
