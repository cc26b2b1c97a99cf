import 'reflect-metadata';
import { MIGRATIONS } from '@task-scheduler/migrations';
import { Client, type ClientConfig } from 'pg';
import { DataSource } from 'typeorm';
import { AlertChannelEntity, AlertEntity, AlertRuleEntity } from './entities/alert.entity';
import { ApiKeyEntity } from './entities/api-key.entity';
import { AuditEventEntity } from './entities/audit-event.entity';
import { RunAttemptEntity } from './entities/run-attempt.entity';
import { RunEntity } from './entities/run.entity';
import { RunShardEntity } from './entities/run-shard.entity';
import { CalendarEntity } from './entities/calendar.entity';
import { PipelineEntity } from './entities/pipeline.entity';
import { PipelineRunStepEntity } from './entities/pipeline-run-step.entity';
import { PipelineRunEntity } from './entities/pipeline-run.entity';
import { PipelineVersionEntity } from './entities/pipeline-version.entity';
import { ScheduleEntity } from './entities/schedule.entity';
import { TaskEntity } from './entities/task.entity';
import { TaskVersionEntity } from './entities/task-version.entity';
import { TenantEntity } from './entities/tenant.entity';

export const ENTITIES = [
  TenantEntity,
  ApiKeyEntity,
  TaskEntity,
  TaskVersionEntity,
  RunEntity,
  RunAttemptEntity,
  RunShardEntity,
  AuditEventEntity,
  ScheduleEntity,
  CalendarEntity,
  PipelineEntity,
  PipelineVersionEntity,
  PipelineRunEntity,
  PipelineRunStepEntity,
  AlertChannelEntity,
  AlertRuleEntity,
  AlertEntity,
];

/**
 * node-postgres may emit `error` twice on a client whose session the server ended (the FATAL message, then the
 * socket's end). TypeORM's listener is gone after the first, and an `error` with no listener crashes the process.
 * Every pool client gets a last-resort listener from birth, including the one TypeORM makes while it initializes:
 * query errors still reach their callers, and the pool drops the client.
 */
class GuardedClient extends Client {
  constructor(config?: string | ClientConfig) {
    super(config);
    this.on('error', () => undefined);
  }
}

export interface DataSourceOptions {
  url: string;
  /** Shown in pg_stat_activity, e.g. `task-scheduler-api`. */
  applicationName: string;
  poolSize?: number;
}

/**
 * The one way the product connects to PostgreSQL. Schema changes happen only
 * through migrations (`synchronize` is never on). A `search_path` can be set
 * in the URL (`?options=-c%20search_path%3Dname`), which the tests use to
 * isolate each run in its own schema.
 */
export function createDataSource(opts: DataSourceOptions): DataSource {
  return new DataSource({
    type: 'postgres',
    url: opts.url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'schema_migrations',
    migrationsTransactionMode: 'each',
    synchronize: false,
    logging: false,
    applicationName: opts.applicationName,
    extra: { max: opts.poolSize ?? 10, connectionTimeoutMillis: 5000, Client: GuardedClient },
  });
}

/** Applies pending migrations under an advisory lock, so concurrent starters do not race. */
export async function runMigrations(dataSource: DataSource): Promise<string[]> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock(727274001)');
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    return applied.map((m) => m.name);
  } finally {
    await runner.query('SELECT pg_advisory_unlock(727274001)').catch(() => undefined);
    await runner.release();
  }
}
