import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { ValidationPipe } from '@nestjs/common';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { SwaggerModule } from '@nestjs/swagger';
import type { AppConfig } from '@task-scheduler/config';
import express from 'express';
import helmet from 'helmet';
import type { NextFunction, Request, Response } from 'express';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module';
import { ApiError, ErrorCode } from './common/api-error';
import { errorBody, toApiError } from './common/api-error.filter';
import { JSON_MEDIA_TYPES, answerClientError, checkBody, checkQuery, requireJsonBody } from './common/input-middleware';
import { loadShedding } from './common/load-shedding';
import { buildOpenApiDocument } from './common/openapi';
import { validationDetails } from './common/validation';
import { API_TRACING } from './infra/tracing';
import type { ApiTracing } from './infra/tracing';
import { httpMetricsMiddleware } from './metrics/http-metrics.middleware';
import { MetricsService } from './metrics/metrics.service';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** Builds the API application (not yet listening); `main.ts` and the tests share it. */
export async function createApp(config: AppConfig, opts: { logger?: boolean } = {}): Promise<INestApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), {
    bodyParser: false,
    bufferLogs: true,
    abortOnError: false,
  });
  if (opts.logger !== false) {
    // Nest's start-up chatter (a line per module and per route) goes to debug: at info the log shows what happens.
    const pinoLogger = app.get(Logger);
    const startup = new Set(['RoutesResolver', 'RouterExplorer', 'InstanceLoader']);
    app.useLogger({
      log: (message: unknown, ...rest: unknown[]) =>
        startup.has(rest[rest.length - 1] as string) ? pinoLogger.debug(message, ...rest) : pinoLogger.log(message, ...rest),
      error: (message: unknown, ...rest: unknown[]) => pinoLogger.error(message, ...rest),
      warn: (message: unknown, ...rest: unknown[]) => pinoLogger.warn(message, ...rest),
      debug: (message: unknown, ...rest: unknown[]) => pinoLogger.debug(message, ...rest),
      verbose: (message: unknown, ...rest: unknown[]) => pinoLogger.verbose(message, ...rest),
      fatal: (message: unknown, ...rest: unknown[]) => pinoLogger.fatal(message, ...rest),
    });
  } else app.useLogger(false);

  // First, so that every request is timed, also those answered before a route (bad bodies, 404).
  app.use(httpMetricsMiddleware(app.get(MetricsService)));
  app.disable('x-powered-by');
  // No automatic weak ETag (and 304 on If-None-Match) on every GET: ETags are the task versions routes set on purpose.
  app.set('etag', false);
  // Helmet's default CSP, less `upgrade-insecure-requests`: over plain HTTP from any origin but localhost it sent
  // Swagger UI's own scripts and styles to https (a blank page). Behind TLS every same-origin URL is https already.
  app.use(helmet({ contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } }));
  // A browser client on another origin may send every request header the API reads and read every response
  // header it documents (docs/api.md, "CORS"); browsers hide the others from scripts.
  if (config.CORS_ORIGINS.length)
    app.enableCors({
      origin: config.CORS_ORIGINS,
      allowedHeaders: ['content-type', 'authorization', 'x-api-key', 'idempotency-key', 'if-match', 'x-request-id'],
      exposedHeaders: ['etag', 'location', 'retry-after', 'idempotent-replayed', 'x-request-id'],
    });
  // Every response names its request id, the key to the matching log lines. A caller's own id is kept when sane.
  app.use((req: Request & { id?: string }, res: Response, next: NextFunction) => {
    const given = req.headers['x-request-id'];
    req.id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    res.setHeader('x-request-id', req.id);
    next();
  });
  // A server span per request when OTEL_EXPORTER_OTLP_ENDPOINT is set; after the request id, which it records.
  const tracing = app.get<ApiTracing>(API_TRACING);
  if (tracing.enabled) app.use(tracing.requestSpans());
  // The input rules (common/input-rules.ts), before routing: every route gets them, none can opt out.
  app.use(requireJsonBody);
  app.use(express.json({ limit: config.BODY_LIMIT_BYTES, strict: true, type: JSON_MEDIA_TYPES }));
  app.use(checkBody);
  app.use(checkQuery);
  // The in-flight bound (common/load-shedding.ts): after the body is read, before authentication.
  app.use(loadShedding(config.API_MAX_IN_FLIGHT, app.get(MetricsService)));
  // Body-parser failures happen before any route; answer them in the API's error format.
  app.use((err: unknown, req: Request & { id?: string }, res: Response, next: NextFunction) => {
    if (!err) return next();
    const apiError = toApiError(err);
    res.status(apiError.status).json(errorBody(apiError, req.id));
  });
  app.useGlobalPipes(
    new ValidationPipe({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      exceptionFactory: (errors) => {
        const details = validationDetails(errors);
        return new ApiError(ErrorCode.VALIDATION_FAILED, details.map((d) => d.message).join('; ') || 'invalid request', details);
      },
    }),
  );
  app.enableShutdownHooks();
  // Requests Node's HTTP parser refuses (control characters in a header, headers too large) never reach
  // Express; answer them in the error format too instead of Node's bare 400.
  app.getHttpServer().on('clientError', answerClientError);

  const document = buildOpenApiDocument(app);
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
  return app;
}
