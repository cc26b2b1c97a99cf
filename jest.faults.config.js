/**
 * Fault tests (test/faults): real processes killed and restarted — the Temporal
 * server, the API — one suite at a time (`npm run test:faults` passes
 * --runInBand). They reuse the integration project's transform, module names
 * and global setup (PostgreSQL schema, workflow bundle) from jest.config.js,
 * and are kept out of the main run because each kills what it depends on.
 */
const main = require('./jest.config.js');

const integration = main.projects.find((p) => p.displayName === 'integration');
if (!integration) throw new Error('jest.config.js has no `integration` project to take the fault tests\' setup from');

module.exports = {
  ...integration,
  displayName: 'faults',
  testMatch: ['<rootDir>/test/faults/**/*.fault.spec.ts'],
  testTimeout: 600_000,
  reporters: main.reporters,
};
