import { randomUUID } from 'node:crypto';
import { Module } from '@nestjs/common';
import type { DynamicModule } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import type { AppConfig } from '@task-scheduler/config';
import type { IncomingMessage } from 'node:http';
import { LoggerModule } from 'nestjs-pino';
import { AuditService } from './audit/audit.service';
import { ApiKeyGuard } from './auth/api-key.guard';
import { BootstrapService } from './auth/bootstrap.service';
import { ApiErrorFilter } from './common/api-error.filter';
import { HealthController } from './health/health.controller';
import { InfraModule } from './infra/infra.module';
import { RunsController } from './runs/runs.controller';
import { RunsService } from './runs/runs.service';
import { TasksController } from './tasks/tasks.controller';
import { TasksService } from './tasks/tasks.service';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        InfraModule.forRoot(config),
        LoggerModule.forRoot({
          pinoHttp: {
            level: config.LOG_LEVEL,
            // Honour a caller's request id when it is sane, so logs can be joined across services.
            genReqId: (req: IncomingMessage) => {
              const given = req.headers['x-request-id'];
              return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
            },
            redact: { paths: ['req.headers["x-api-key"]', 'req.headers.authorization', 'req.headers.cookie'], censor: '[redacted]' },
            autoLogging: { ignore: (req) => req.url === '/health' || req.url === '/ready' },
          },
        }),
      ],
      controllers: [HealthController, TasksController, RunsController],
      providers: [
        { provide: APP_GUARD, useClass: ApiKeyGuard },
        { provide: APP_FILTER, useClass: ApiErrorFilter },
        AuditService,
        BootstrapService,
        TasksService,
        RunsService,
      ],
    };
  }
}
