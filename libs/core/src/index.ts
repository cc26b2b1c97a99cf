export * from './api-key';
export * from './temporal-ui';
