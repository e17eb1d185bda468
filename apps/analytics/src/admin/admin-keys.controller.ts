import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  Param,
  Post,
  Req,
  UseGuards,
} from '@nestjs/common';
import type { KeyListing, Principal } from '#common';
import type { FastifyRequest } from 'fastify';
import { AdminGuard, AdminPrincipal } from '../auth/admin.guard.js';
import { AdminKeys, type CreatedKey } from './admin-keys.js';
import { adminRequestContext } from './audit-log.js';

/** SPEC §5 v2 admin routes: keys created, listed and revoked at run time. */
@Controller('api/v1/admin/keys')
@UseGuards(AdminGuard)
export class AdminKeysController {
  constructor(@Inject(AdminKeys) private readonly keys: AdminKeys) {}

  @Post()
  @HttpCode(201)
  create(
    @Body() body: unknown,
    @AdminPrincipal() principal: Principal,
    @Req() request: FastifyRequest,
  ): Promise<CreatedKey> {
    return this.keys.create(body, principal, adminRequestContext(request));
  }

  @Get()
  list(@AdminPrincipal() principal: Principal): Promise<KeyListing[]> {
    return this.keys.list(principal);
  }

  @Delete(':id')
  @HttpCode(204)
  revoke(
    @Param('id') id: string,
    @AdminPrincipal() principal: Principal,
    @Req() request: FastifyRequest,
  ): Promise<void> {
    return this.keys.revoke(id, principal, adminRequestContext(request));
  }
}
