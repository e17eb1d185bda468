import { type DynamicModule, Inject, Module, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { AUTH_KEYS_CHANGED, type Bus, ConfigStore } from '#common';
import type { Logger } from 'pino';
import { KeyStore } from './keys/key-store.js';
import { VerifyController } from './keys/verify.controller.js';

export const AUTH_BUS = Symbol('AUTH_BUS');
export const AUTH_LOGGER = Symbol('AUTH_LOGGER');

/** Announces key changes so every edge drops its verify cache (SPEC §5). */
class KeyChangeAnnouncer implements OnModuleInit, OnModuleDestroy {
  private stop?: () => void;

  constructor(
    @Inject(ConfigStore) private readonly config: ConfigStore,
    @Inject(KeyStore) private readonly keys: KeyStore,
    @Inject(AUTH_BUS) private readonly bus: Bus,
    @Inject(AUTH_LOGGER) private readonly logger: Logger,
  ) {}

  onModuleInit(): void {
    this.stop = this.config.onChange((next) => {
      if (!this.keys.load(next)) return;
      this.logger.info({ version: this.keys.version, keys: next.keys.length }, 'keys changed');
      this.bus
        .emit(AUTH_KEYS_CHANGED, { version: this.keys.version, at: new Date().toISOString() })
        .catch((error: unknown) => this.logger.error({ err: error }, 'could not announce key change'));
    });
  }

  onModuleDestroy(): void {
    this.stop?.();
  }
}

@Module({})
export class AuthModule {
  static forRoot(options: { config: ConfigStore; bus: Bus; logger: Logger }): DynamicModule {
    return {
      module: AuthModule,
      controllers: [VerifyController],
      providers: [
        { provide: ConfigStore, useValue: options.config },
        { provide: AUTH_BUS, useValue: options.bus },
        { provide: AUTH_LOGGER, useValue: options.logger },
        { provide: KeyStore, useFactory: () => new KeyStore(options.config.current) },
        KeyChangeAnnouncer,
      ],
    };
  }
}
