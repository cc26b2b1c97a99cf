import { Global, Inject, Module } from '@nestjs/common';
import type { OnApplicationShutdown } from '@nestjs/common';
import type { AppConfig } from '@task-scheduler/config';
import { createDataSource } from '@task-scheduler/db';
import { Client, Connection } from '@temporalio/client';
import { DataSource } from 'typeorm';
import { APP_CONFIG, TEMPORAL_CLIENT, TEMPORAL_CONNECTION } from './tokens';
import { API_TRACING, ApiTracing } from './tracing';

/**
 * PostgreSQL and Temporal connections and the API's tracing, shared by every feature module and
 * closed (tracing: flushed) on shutdown. Built from the validated config given to {@link InfraModule.forRoot}.
 */
@Global()
@Module({})
export class InfraModule implements OnApplicationShutdown {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(TEMPORAL_CONNECTION) private readonly connection: Connection,
    @Inject(API_TRACING) private readonly tracing: ApiTracing,
  ) {}

  static forRoot(config: AppConfig) {
    return {
      module: InfraModule,
      providers: [
        { provide: APP_CONFIG, useValue: config },
        { provide: API_TRACING, useFactory: () => ApiTracing.fromConfig(config) },
        {
          provide: DataSource,
          useFactory: async () => createDataSource({ url: config.DATABASE_URL, applicationName: 'task-scheduler-api' }).initialize(),
        },
        {
          provide: TEMPORAL_CONNECTION,
          useFactory: () => Connection.connect({ address: config.TEMPORAL_ADDRESS }),
        },
        {
          provide: TEMPORAL_CLIENT,
          inject: [TEMPORAL_CONNECTION, API_TRACING],
          // Workflow starts and signals traced as children of the request's span. Temporal Schedules have no
          // interceptor here: a schedule-started run begins its own trace at its RunWorkflow span.
          useFactory: (connection: Connection, tracing: ApiTracing) =>
            new Client({
              connection,
              namespace: config.TEMPORAL_NAMESPACE,
              interceptors: { workflow: tracing.workflowClientInterceptors() },
            }),
        },
      ],
      exports: [APP_CONFIG, DataSource, TEMPORAL_CONNECTION, TEMPORAL_CLIENT, API_TRACING],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.connection.close().catch(() => undefined);
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
    await this.tracing.shutdown().catch(() => undefined);
  }
}
