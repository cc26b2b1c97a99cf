import { Global, Inject, Module } from '@nestjs/common';
import type { OnApplicationShutdown } from '@nestjs/common';
import type { AppConfig } from '@task-scheduler/config';
import { createDataSource } from '@task-scheduler/db';
import { Client, Connection } from '@temporalio/client';
import { DataSource } from 'typeorm';
import { APP_CONFIG, TEMPORAL_CLIENT, TEMPORAL_CONNECTION } from './tokens';

/**
 * PostgreSQL and Temporal connections, shared by every feature module and
 * closed on shutdown. Built from the validated config given to {@link InfraModule.forRoot}.
 */
@Global()
@Module({})
export class InfraModule implements OnApplicationShutdown {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(TEMPORAL_CONNECTION) private readonly connection: Connection,
  ) {}

  static forRoot(config: AppConfig) {
    return {
      module: InfraModule,
      providers: [
        { provide: APP_CONFIG, useValue: config },
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
          inject: [TEMPORAL_CONNECTION],
          useFactory: (connection: Connection) => new Client({ connection, namespace: config.TEMPORAL_NAMESPACE }),
        },
      ],
      exports: [APP_CONFIG, DataSource, TEMPORAL_CONNECTION, TEMPORAL_CLIENT],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.connection.close().catch(() => undefined);
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}
