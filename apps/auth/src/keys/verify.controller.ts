import { Controller, Inject } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { AUTH_KEY_VERIFY, type VerifyKeyReply, type VerifyKeyRequest } from '#common';
import { KeyStore } from './key-store.js';

@Controller()
export class VerifyController {
  constructor(@Inject(KeyStore) private readonly keys: KeyStore) {}

  @MessagePattern(AUTH_KEY_VERIFY)
  verify(@Payload() request: VerifyKeyRequest): VerifyKeyReply {
    return this.keys.verify(request?.keySha256);
  }
}
