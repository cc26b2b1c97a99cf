export { taskRunWorkflow } from './task-run.workflow';
