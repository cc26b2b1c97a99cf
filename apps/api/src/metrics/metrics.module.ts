import { Global, Module } from '@nestjs/common';
import type { DynamicModule } from '@nestjs/common';
import type { AppConfig } from '@task-scheduler/config';
import { MetricsController } from './metrics.controller';
import { MetricsService } from './metrics.service';

/**
 * The API's metrics: the service every feature counts into (always there, so counting needs no checks), and
 * `GET /metrics` only when METRICS is `on`.
 */
@Global()
@Module({})
export class MetricsModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: MetricsModule,
      controllers: config.METRICS === 'on' ? [MetricsController] : [],
      providers: [MetricsService],
      exports: [MetricsService],
    };
  }
}
