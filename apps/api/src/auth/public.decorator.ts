import { SetMetadata, applyDecorators } from '@nestjs/common';
import { ApiPublic } from '../common/openapi';

export const IS_PUBLIC = 'isPublic';
/**
 * Marks a route that needs no credential (health probes): the guard lets it through, and the OpenAPI document
 * says so (no security, no 401/403), from this one decorator, so the two cannot disagree.
 */
export const Public = () => applyDecorators(SetMetadata(IS_PUBLIC, true), ApiPublic());
