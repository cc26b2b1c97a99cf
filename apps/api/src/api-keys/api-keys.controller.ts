import { Body, Controller, Delete, Get, Param, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiErrors } from '../common/openapi';
import { ErrorCode } from '../common/api-error';
import { RequirePermission } from '../auth/permissions';
import { Ctx } from '../auth/request-context';
import type { RequestContext } from '../auth/request-context';
import { ListQueryDto } from '../common/list-query.dto';
import { ApiKeysService } from './api-keys.service';
import { ApiKeyPage, ApiKeyResponse, CreatedApiKeyResponse } from './dtos/api-key.response';
import { CreateApiKeyDto } from './dtos/create-api-key.dto';
import { mapPage } from '../common/page.dto';
import type { Page } from '../common/pagination';

@ApiTags('api-keys')
@Controller('v1/api-keys')
export class ApiKeysController {
  constructor(private readonly keys: ApiKeysService) {}

  @Post()
  @RequirePermission('api-keys:write')
  @ApiOperation({ operationId: 'createApiKey', summary: 'Create an API key; the full key is returned only here' })
  // The platform admin may name another tenant (`tenantId`), which may not exist.
  @ApiErrors(ErrorCode.TENANT_NOT_FOUND)
  @ApiCreatedResponse({ type: CreatedApiKeyResponse })
  async create(@Ctx() ctx: RequestContext, @Body() dto: CreateApiKeyDto): Promise<CreatedApiKeyResponse> {
    const { entity, key } = await this.keys.create(ctx, dto);
    return { ...ApiKeyResponse.from(entity), key };
  }

  @Get()
  @RequirePermission('api-keys:read')
  @ApiOperation({ operationId: 'listApiKeys', summary: 'List the API keys of your tenant (never secrets)' })
  @ApiOkResponse({ type: ApiKeyPage })
  async list(@Ctx() ctx: RequestContext, @Query() q: ListQueryDto): Promise<Page<ApiKeyResponse>> {
    const page = await this.keys.list(ctx, q.limit ?? 50, q.cursor);
    return mapPage(page, ApiKeyResponse.from);
  }

  @Delete(':id')
  @RequirePermission('api-keys:write')
  @ApiOperation({ operationId: 'revokeApiKey', summary: 'Revoke an API key (effective immediately)' })
  @ApiErrors(ErrorCode.API_KEY_NOT_FOUND)
  @ApiOkResponse({ type: ApiKeyResponse })
  async revoke(@Ctx() ctx: RequestContext, @Param('id') id: string): Promise<ApiKeyResponse> {
    return ApiKeyResponse.from(await this.keys.revoke(ctx, id));
  }
}
