/* Real dependencies for integration and e2e tests, started once per `jest` run:
 * - Temporal: a dev server from the provisioned CLI (in memory, headless, random port).
 * - PostgreSQL: DATABASE_URL, else 127.0.0.1:5432/test when reachable, else an embedded
 *   server; every run gets its own schema, migrated once here and dropped in teardown.
 * - The workflow bundle, built once and loaded by every test worker. */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_TENANT, TenantEntity, createDataSource, runMigrations } from '@task-scheduler/db';
import { bundleWorkflowCode } from '@temporalio/worker';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const stack = require('../../scripts/lib/local-stack.cjs');

interface Stopper {
  name: string;
  stop: () => Promise<void>;
}
declare global {
  var __TS_STOPPERS__: Stopper[] | undefined;
}

const log = (m: string) => process.stderr.write(`[global-setup] ${m}\n`);

export default async function globalSetup(): Promise<void> {
  const stoppers: Stopper[] = [];
  globalThis.__TS_STOPPERS__ = stoppers;
  const workDir = mkdtempSync(join(tmpdir(), 'task-scheduler-test-'));

  const cli: string = stack.resolveTemporalCli();
  const port: number = await stack.freePort();
  const t0 = Date.now();
  const temporal = await stack.startTemporalDevServer({ cli, port, logFile: join(workDir, 'temporal.log') });
  stoppers.push({ name: 'temporal', stop: temporal.stop });
  log(`Temporal dev server at ${temporal.address} in ${Date.now() - t0} ms (log ${workDir}/temporal.log)`);

  const pg = await stack.resolvePostgres({ workDir });
  if (pg.stop) stoppers.push({ name: 'embedded postgres', stop: pg.stop });
  const scratch = await stack.createScratchSchema(pg.url, 'ts_test');
  stoppers.push({ name: 'test schema', stop: scratch.drop });
  const ds = createDataSource({ url: scratch.url, applicationName: 'task-scheduler-test-setup', poolSize: 2 });
  await ds.initialize();
  await runMigrations(ds);
  // What the first start of the API creates. Made here, not by whichever suite's stack starts first, because
  // suites that write tenants directly (e.g. the recorder's) may run before any stack: the API's bootstrap
  // then finds tenants but no `default`, and no stack's BOOTSTRAP_API_KEY would be added.
  await ds.getRepository(TenantEntity).save(ds.getRepository(TenantEntity).create(DEFAULT_TENANT));
  await ds.destroy();
  log(`PostgreSQL ${pg.url.replace(/:[^:@/]*@/, ':***@')} schema ${scratch.schema}`);

  const root = join(__dirname, '..', '..');
  const { code } = await bundleWorkflowCode({
    workflowsPath: join(root, 'workflows/src/index.ts'),
    // As in the production bundle (scripts/bundle-workflows.mjs): the replay tests run with them too.
    workflowInterceptorModules: [join(root, 'workflows/src/tracing-interceptors.ts')],
    webpackConfigHook: (config) => {
      config.resolve = {
        ...config.resolve,
        alias: { ...(config.resolve?.alias as object), '@task-scheduler/contracts': join(root, 'libs/contracts/src') },
      };
      return config;
    },
    logger: { info() {}, warn() {}, error: (m: string) => log(m), debug() {}, trace() {}, log() {} },
  });
  const bundlePath = join(workDir, 'workflow-bundle.js');
  writeFileSync(bundlePath, code);

  process.env.TEST_TEMPORAL_ADDRESS = temporal.address;
  process.env.TEST_DATABASE_URL = scratch.url;
  process.env.TEST_WORKFLOW_BUNDLE = bundlePath;
  // Every API and worker process a test spawns logs here too; global teardown reads all of it for leaks.
  process.env.TEST_APP_LOG_DIR = join(workDir, 'app-logs');
  mkdirSync(process.env.TEST_APP_LOG_DIR, { recursive: true });
}
