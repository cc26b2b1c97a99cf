export { taskRunWorkflow } from './task-run.workflow';
export { alertDeliveryWorkflow } from './alert-delivery.workflow';
export { pipelineRunWorkflow } from './pipeline-run.workflow';
