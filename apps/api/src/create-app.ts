import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { ValidationPipe } from '@nestjs/common';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { SwaggerModule } from '@nestjs/swagger';
import type { AppConfig } from '@task-scheduler/config';
import type { ValidationError } from 'class-validator';
import express from 'express';
import helmet from 'helmet';
import type { NextFunction, Request, Response } from 'express';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module';
import { ApiError, ErrorCode } from './common/api-error';
import { errorBody, toApiError } from './common/api-error.filter';
import { buildOpenApiDocument } from './common/openapi';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

function flatten(errors: ValidationError[], parent = ''): { field: string; message: string }[] {
  return errors.flatMap((e) => {
    const field = parent ? `${parent}.${e.property}` : e.property;
    const own = Object.values(e.constraints ?? {}).map((message) => ({
      field,
      message: message.startsWith('property ') ? `${field} is not a known field` : message,
    }));
    return [...own, ...flatten(e.children ?? [], field)];
  });
}

/** Builds the API application (not yet listening); `main.ts` and the tests share it. */
export async function createApp(config: AppConfig, opts: { logger?: boolean } = {}): Promise<INestApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), {
    bodyParser: false,
    bufferLogs: true,
    abortOnError: false,
  });
  if (opts.logger !== false) app.useLogger(app.get(Logger));
  else app.useLogger(false);

  app.disable('x-powered-by');
  app.use(helmet());
  if (config.CORS_ORIGINS.length)
    app.enableCors({ origin: config.CORS_ORIGINS, allowedHeaders: ['content-type', 'x-api-key', 'idempotency-key', 'x-request-id'] });
  // Every response names its request id, the key to the matching log lines. A caller's own id is kept when sane.
  app.use((req: Request & { id?: string }, res: Response, next: NextFunction) => {
    const given = req.headers['x-request-id'];
    req.id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    res.setHeader('x-request-id', req.id);
    next();
  });
  app.use(express.json({ limit: config.BODY_LIMIT_BYTES, strict: true }));
  app.use((req: Request, _res: Response, next: NextFunction) => {
    const body: unknown = req.body;
    if (body !== undefined && (typeof body !== 'object' || body === null || Array.isArray(body))) {
      return next(
        new ApiError(ErrorCode.VALIDATION_FAILED, 'request body must be a JSON object', [
          { field: 'body', message: 'must be a JSON object' },
        ]),
      );
    }
    next();
  });
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
        const details = flatten(errors);
        return new ApiError(ErrorCode.VALIDATION_FAILED, details.map((d) => d.message).join('; ') || 'invalid request', details);
      },
    }),
  );
  app.enableShutdownHooks();

  const document = buildOpenApiDocument(app);
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
  return app;
}
