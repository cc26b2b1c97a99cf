import { Body, Controller, Get, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiErrors } from '../common/openapi';
import { ErrorCode } from '../common/api-error';
import { PLATFORM_PERMISSION, RequirePermission } from '../auth/permissions';
import { Ctx } from '../auth/request-context';
import type { RequestContext } from '../auth/request-context';
import { ListQueryDto } from '../common/list-query.dto';
import { CreateTenantDto, TenantPage, TenantResponse, UpdateTenantDto } from './dtos/tenant.dto';
import { TenantsService } from './tenants.service';
import { mapPage } from '../common/page.dto';
import type { Page } from '../common/pagination';

@ApiTags('tenants')
@Controller('v1/tenants')
export class TenantsController {
  constructor(private readonly tenants: TenantsService) {}

  @Post()
  @RequirePermission(PLATFORM_PERMISSION)
  @ApiOperation({ operationId: 'createTenant', summary: 'Create a tenant (platform admin)' })
  @ApiErrors(ErrorCode.TENANT_SLUG_TAKEN)
  @ApiCreatedResponse({ type: TenantResponse })
  async create(@Ctx() ctx: RequestContext, @Body() dto: CreateTenantDto): Promise<TenantResponse> {
    return TenantResponse.from(await this.tenants.create(ctx, dto));
  }

  @Get()
  @RequirePermission(PLATFORM_PERMISSION)
  @ApiOperation({ operationId: 'listTenants', summary: 'List tenants (platform admin)' })
  @ApiOkResponse({ type: TenantPage })
  async list(@Query() q: ListQueryDto): Promise<Page<TenantResponse>> {
    const page = await this.tenants.list(q.limit ?? 50, q.cursor);
    return mapPage(page, TenantResponse.from);
  }

  @Get(':id')
  @RequirePermission(PLATFORM_PERMISSION)
  @ApiOperation({ operationId: 'getTenant', summary: 'Get a tenant (platform admin)' })
  @ApiErrors(ErrorCode.TENANT_NOT_FOUND)
  @ApiOkResponse({ type: TenantResponse })
  async get(@Param('id') id: string): Promise<TenantResponse> {
    return TenantResponse.from(await this.tenants.get(id));
  }

  @Patch(':id')
  @RequirePermission(PLATFORM_PERMISSION)
  @ApiOperation({ operationId: 'updateTenant', summary: 'Rename, suspend/resume or change the limits of a tenant (platform admin)' })
  @ApiErrors(ErrorCode.TENANT_NOT_FOUND, ErrorCode.TENANT_SELF_SUSPEND)
  @ApiOkResponse({ type: TenantResponse })
  async update(@Ctx() ctx: RequestContext, @Param('id') id: string, @Body() dto: UpdateTenantDto): Promise<TenantResponse> {
    return TenantResponse.from(await this.tenants.update(ctx, id, dto));
  }
}
