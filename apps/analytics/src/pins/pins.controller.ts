import {
  Body,
  Controller,
  Get,
  HttpCode,
  Inject,
  Param,
  Post,
  Query,
  Req,
  UseGuards,
} from '@nestjs/common';
import type { Principal } from '#common';
import type { FastifyRequest } from 'fastify';
import { adminRequestContext } from '../admin/audit-log.js';
import type { PinView } from '../api/answers.js';
import { QueryParams } from '../api/query-params.js';
import { AdminGuard, AdminPrincipal } from '../auth/admin.guard.js';
import { PinApprovals } from './pin-approvals.js';

/**
 * SPEC §7 (v2) pinned tool definitions: listed for every admin (a tenant admin: of the namespaces
 * its credential may use), approved by an admin of all tenants.
 */
@Controller('api/v1/pins')
@UseGuards(AdminGuard)
export class PinsController {
  constructor(@Inject(PinApprovals) private readonly pins: PinApprovals) {}

  @Get()
  list(@Query() query: unknown, @AdminPrincipal() principal: Principal): PinView[] {
    const params = new QueryParams(query, ['namespace', 'tool']);
    return this.pins.list(
      { namespace: params.text('namespace'), tool: params.text('tool') },
      principal,
    );
  }

  @Post(':namespace/:tool/approve')
  @HttpCode(200)
  approve(
    @Param('namespace') namespace: string,
    @Param('tool') tool: string,
    @Body() body: unknown,
    @AdminPrincipal() principal: Principal,
    @Req() request: FastifyRequest,
  ): Promise<PinView> {
    return this.pins.approve(namespace, tool, body, principal, adminRequestContext(request));
  }
}
