/**
 * One Jest run for the whole suite. Unit tests run in parallel; integration and
 * end-to-end tests share one Temporal dev server and one PostgreSQL database
 * started in global setup (test/support/global-setup.ts).
 */
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
    },
  },
];
const moduleNameMapper = {
  '^@task-scheduler/(contracts|config|core|db)$': '<rootDir>/libs/$1/src',
  '^@task-scheduler/(migrations|workflows|activities)$': '<rootDir>/$1/src',
  '^@task-scheduler/(api|worker)$': '<rootDir>/apps/$1/src',
};
// jose and cel-js ship ESM only; they are compiled to CommonJS for Jest like the sources.
const common = {
  rootDir: __dirname,
  transform: { '^.+\\.ts$': swc, '/node_modules/(jose|@marcbachmann/cel-js)/.+\\.js$': swc },
  transformIgnorePatterns: ['/node_modules/(?!(jose|@marcbachmann/cel-js)/)'],
  moduleNameMapper,
  testEnvironment: 'node',
};

module.exports = {
  testTimeout: 120_000,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.spec.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.spec.ts', '<rootDir>/test/e2e/**/*.spec.ts', '<rootDir>/test/replay/**/*.spec.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    },
  ],
};
