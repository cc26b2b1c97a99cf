export { createApp } from './create-app';
