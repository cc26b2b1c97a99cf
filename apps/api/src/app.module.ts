import { randomUUID } from 'node:crypto';
import { Module } from '@nestjs/common';
import type { DynamicModule } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { loggerOptions } from '@task-scheduler/config';
import type { AppConfig } from '@task-scheduler/config';
import type { IncomingMessage } from 'node:http';
import { LoggerModule } from 'nestjs-pino';
import { AlertChannelsService } from './alerts/alert-channels.service';
import { AlertDelivery } from './alerts/alert-delivery';
import { AlertDispatcher } from './alerts/alert-dispatcher';
import { AlertEvaluator } from './alerts/alert-evaluator';
import { AlertRulesService } from './alerts/alert-rules.service';
import { AlertSettingsController } from './alerts/alert-settings.controller';
import { AlertChannelsController, AlertRulesController, AlertsController } from './alerts/alerts.controller';
import { AlertsService } from './alerts/alerts.service';
import { ApiKeysController } from './api-keys/api-keys.controller';
import { ApiKeysService } from './api-keys/api-keys.service';
import { AuditController } from './audit/audit.controller';
import { AuditService } from './audit/audit.service';
import { RateLimitService } from './auth/rate-limit.service';
import { TenantsController } from './tenants/tenants.controller';
import { TenantsService } from './tenants/tenants.service';
import { AuthGuard } from './auth/auth.guard';
import { JwtVerifier } from './auth/jwt-verifier';
import { BootstrapService } from './auth/bootstrap.service';
import { ApiErrorFilter } from './common/api-error.filter';
import { LocationInterceptor } from './common/location.interceptor';
import { HealthController } from './health/health.controller';
import { InfraModule } from './infra/infra.module';
import { MeController } from './me/me.controller';
import { MeService } from './me/me.service';
import { MetricsModule } from './metrics/metrics.module';
import { RetentionService } from './retention/retention.service';
import { RunsController } from './runs/runs.controller';
import { RunLogsService } from './runs/run-logs.service';
import { RunReconciler } from './runs/run-reconciler';
import { RunOutputEvents } from './runs/run-output-events';
import { RunsService } from './runs/runs.service';
import { TasksController } from './tasks/tasks.controller';
import { TasksService } from './tasks/tasks.service';
import { WorkersController } from './workers/workers.controller';
import { CalendarsController } from './calendars/calendars.controller';
import { CalendarsService } from './calendars/calendars.service';
import { ScheduleReconciler } from './schedules/schedule-reconciler';
import { SchedulePreviewService } from './schedules/schedule-preview.service';
import { SchedulesController } from './schedules/schedules.controller';
import { SchedulesService } from './schedules/schedules.service';
import { WorkersService } from './workers/workers.service';
import { PipelinesController } from './pipelines/pipelines.controller';
import { PipelinesService } from './pipelines/pipelines.service';
import { PipelineRunsController } from './pipeline-runs/pipeline-runs.controller';
import { PipelineRunsService } from './pipeline-runs/pipeline-runs.service';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        InfraModule.forRoot(config),
        MetricsModule.forRoot(config),
        LoggerModule.forRoot({
          pinoHttp: {
            ...loggerOptions('task-scheduler-api', config),
            // The id was chosen (and echoed) by the first middleware in create-app.ts.
            genReqId: (req: IncomingMessage) => req.id ?? randomUUID(),
            customAttributeKeys: { reqId: 'requestId', responseTime: 'durationMs' },
            // Every line logged during a request carries its id (not the whole request).
            quietReqLogger: true,
            // One short line per request: method, path, status, time, tenant; not every header of both sides.
            serializers: {
              ...loggerOptions('task-scheduler-api', config).serializers,
              req: (req: { method: string; url: string }) => ({ method: req.method, url: req.url }),
              res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
            },
            customProps: (req: IncomingMessage & { auth?: { tenantId?: string } }) =>
              req.auth?.tenantId ? { tenantId: req.auth.tenantId } : {},
            customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : 'info'),
            customSuccessMessage: (req, res) => `${req.method} ${req.url} ${res.statusCode}`,
            customErrorMessage: (req, res) => `${req.method} ${req.url} ${res.statusCode}`,
            autoLogging: { ignore: (req) => req.url === '/health' || req.url === '/ready' || req.url === '/metrics' },
          },
        }),
      ],
      controllers: [
        HealthController,
        TasksController,
        RunsController,
        ApiKeysController,
        AuditController,
        TenantsController,
        AlertSettingsController,
        AlertChannelsController,
        AlertRulesController,
        AlertsController,
        WorkersController,
        SchedulesController,
        CalendarsController,
        PipelinesController,
        PipelineRunsController,
        MeController,
      ],
      providers: [
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: APP_FILTER, useClass: ApiErrorFilter },
        { provide: APP_INTERCEPTOR, useClass: LocationInterceptor },
        AuditService,
        ApiKeysService,
        RateLimitService,
        JwtVerifier,
        TenantsService,
        BootstrapService,
        TasksService,
        RunsService,
        RunLogsService,
        RunReconciler,
        RetentionService,
        AlertDelivery,
        AlertDispatcher,
        AlertEvaluator,
        AlertChannelsService,
        AlertRulesService,
        AlertsService,
        RunOutputEvents,
        WorkersService,
        SchedulePreviewService,
        SchedulesService,
        ScheduleReconciler,
        CalendarsService,
        PipelinesService,
        PipelineRunsService,
        MeService,
      ],
    };
  }
}
