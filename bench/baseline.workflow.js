// Bare-Temporal baseline: one activity that runs the same shell command, nothing else.
const { condition, proxyActivities } = require('@temporalio/workflow');

const { runCommand } = proxyActivities({ startToCloseTimeout: '1 minute', retry: { maximumAttempts: 1 } });

async function baselineWorkflow(command, args) {
  return runCommand(command, args);
}

/** Holds a workflow open (and in the worker's cache) until it is terminated or ten minutes pass. */
async function baselineIdleWorkflow() {
  await condition(() => false, '10 minutes');
}

module.exports = { baselineWorkflow, baselineIdleWorkflow };
