import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { OpenAPIObject } from '@nestjs/swagger';
import { loadConfig } from '@task-scheduler/config';
import { AppModule } from './app.module';
import { buildOpenApiDocument } from './common/openapi';

/**
 * The OpenAPI document without PostgreSQL or Temporal: Nest's preview mode reads the module graph and the
 * controllers' metadata without instantiating a provider, so nothing connects. The server builds the same
 * document from the same function ({@link buildOpenApiDocument}) for /docs-json.
 */
export async function createOpenApiDocument(): Promise<OpenAPIObject> {
  // The config is only needed to build the module graph; no connection is ever opened with it.
  const config = loadConfig({ DATABASE_URL: 'postgres://unused.invalid/openapi' });
  const app = await NestFactory.create(AppModule.forRoot(config), { preview: true, logger: false, abortOnError: false });
  try {
    return buildOpenApiDocument(app);
  } finally {
    await app.close();
  }
}
