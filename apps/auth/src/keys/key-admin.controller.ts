import { Controller, Inject } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  AUTH_ADMIN_KEYS_CREATE,
  AUTH_ADMIN_KEYS_LIST,
  AUTH_ADMIN_KEYS_REVOKE,
  type CreateKeyReply,
  type CreateKeyRequest,
  type ListKeysReply,
  type ListKeysRequest,
  type RevokeKeyReply,
  type RevokeKeyRequest,
} from '#common';
import { KeyAdmin } from './key-admin.js';

/** The admin API's requests (SPEC §5 v2), sent by the analytics service once it authenticated an admin. */
@Controller()
export class KeyAdminController {
  constructor(@Inject(KeyAdmin) private readonly admin: KeyAdmin) {}

  @MessagePattern(AUTH_ADMIN_KEYS_CREATE)
  create(@Payload() request: CreateKeyRequest): Promise<CreateKeyReply> {
    return this.admin.create(request);
  }

  @MessagePattern(AUTH_ADMIN_KEYS_LIST)
  list(@Payload() request: ListKeysRequest): ListKeysReply {
    return this.admin.list(request);
  }

  @MessagePattern(AUTH_ADMIN_KEYS_REVOKE)
  revoke(@Payload() request: RevokeKeyRequest): Promise<RevokeKeyReply> {
    return this.admin.revoke(request);
  }
}
