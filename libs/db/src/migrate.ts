import { loadConfig } from '@task-scheduler/config';
import { createDataSource, runMigrations } from './data-source';

/** `npm run db:migrate`: applies pending migrations to DATABASE_URL. */
async function main(): Promise<void> {
  const config = loadConfig();
  const dataSource = createDataSource({ url: config.DATABASE_URL, applicationName: 'task-scheduler-migrate', poolSize: 2 });
  await dataSource.initialize();
  try {
    const applied = await runMigrations(dataSource);
    process.stdout.write(applied.length ? `applied migrations: ${applied.join(', ')}\n` : 'schema is up to date\n');
  } finally {
    await dataSource.destroy();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`migration failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
