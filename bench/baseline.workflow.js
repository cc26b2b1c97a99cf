// Bare-Temporal baseline: one activity that runs the same shell command, nothing else.
const { proxyActivities } = require('@temporalio/workflow');

const { runCommand } = proxyActivities({ startToCloseTimeout: '1 minute', retry: { maximumAttempts: 1 } });

async function baselineWorkflow(command, args) {
  return runCommand(command, args);
}

module.exports = { baselineWorkflow };
