/** Injection tokens for the API's infrastructure providers. */
export const APP_CONFIG = Symbol('APP_CONFIG');
export const TEMPORAL_CLIENT = Symbol('TEMPORAL_CLIENT');
export const TEMPORAL_CONNECTION = Symbol('TEMPORAL_CONNECTION');
