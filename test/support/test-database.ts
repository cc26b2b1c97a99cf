import { createDataSource } from '@task-scheduler/db';
import type { DataSource } from 'typeorm';

/**
 * A data source on the test run's PostgreSQL (TEST_DATABASE_URL, migrated by the global setup), for suites that
 * exercise the recorders or SQL directly. `name` shows in pg_stat_activity as task-scheduler-test-<name>.
 */
export async function openTestDataSource(name: string, poolSize = 4): Promise<DataSource> {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is not set: run this through the integration project (global setup)');
  const ds = createDataSource({ url, applicationName: `task-scheduler-test-${name}`, poolSize });
  await ds.initialize();
  return ds;
}
