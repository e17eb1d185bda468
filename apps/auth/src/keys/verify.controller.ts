import { Controller, Inject } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { AUTH_KEY_VERIFY, type VerifyKeyReply, type VerifyKeyRequest } from '#common';
import type { Logger } from 'pino';
import { AUTH_LOGGER } from '../auth.tokens.js';
import { KeyStore } from './key-store.js';

@Controller()
export class VerifyController {
  constructor(
    @Inject(KeyStore) private readonly keys: KeyStore,
    @Inject(AUTH_LOGGER) private readonly logger: Logger,
  ) {}

  @MessagePattern(AUTH_KEY_VERIFY)
  verify(@Payload() request: VerifyKeyRequest): VerifyKeyReply {
    const reply = this.keys.verify(request?.keySha256);
    // The key id of a good key only: never the digest, which stands for the key.
    this.logger.debug({ ok: reply.ok, key_id: reply.principal?.keyId }, 'key verify answered');
    return reply;
  }
}
