import { Controller, Get, Headers, Inject, Res } from '@nestjs/common';
import { metricsAuthorized } from '@task-scheduler/config';
import type { AppConfig } from '@task-scheduler/config';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { Public } from '../auth/public.decorator';
import { ApiError, ErrorCode } from '../common/api-error';
import { APP_CONFIG } from '../infra/tokens';
import { MetricsService } from './metrics.service';

/**
 * `GET /metrics` in Prometheus's text format, for scrapers: without API key (with METRICS_TOKEN set, a bearer
 * token), and left out of the OpenAPI document, which describes the JSON API for its clients.
 */
@ApiExcludeController()
@Public()
@Controller()
export class MetricsController {
  constructor(
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Get('metrics')
  async metricsText(@Headers('authorization') authorization: string | undefined, @Res() res: Response): Promise<void> {
    if (!metricsAuthorized(this.config.METRICS_TOKEN, authorization)) {
      throw new ApiError(ErrorCode.UNAUTHENTICATED, '/metrics needs Authorization: Bearer <METRICS_TOKEN>');
    }
    const body = await this.metrics.exposition();
    res.status(200).type(this.metrics.contentType).send(body);
  }
}
