import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ANY_AUTHENTICATED, RequirePermission } from '../auth/permissions';
import { Ctx } from '../auth/request-context';
import type { RequestContext } from '../auth/request-context';
import { MeResponse } from './dtos/me.response';
import { MeService } from './me.service';

@ApiTags('me')
@Controller('v1/me')
export class MeController {
  constructor(private readonly me: MeService) {}

  @Get()
  @RequirePermission(ANY_AUTHENTICATED)
  @ApiOperation({
    operationId: 'getMe',
    summary: "The caller's tenant, credential, role, permissions, limits and current usage",
    description: 'Any valid credential may call it, whatever its permissions. Never shows a secret.',
  })
  @ApiOkResponse({ type: MeResponse })
  get(@Ctx() ctx: RequestContext): Promise<MeResponse> {
    return this.me.describe(ctx);
  }
}
