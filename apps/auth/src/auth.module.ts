import {
  type DynamicModule,
  Inject,
  Module,
  type OnModuleDestroy,
  type OnModuleInit,
} from '@nestjs/common';
import { AUTH_KEYS_CHANGED, type Bus, ConfigStore } from '#common';
import type { Logger } from 'pino';
import { AUTH_BUS, AUTH_LOGGER } from './auth.tokens.js';
import { KeyStore } from './keys/key-store.js';
import { VerifyController } from './keys/verify.controller.js';

export { AUTH_BUS, AUTH_LOGGER } from './auth.tokens.js';

const RETRY_ANNOUNCE_MS = 1_000;

/**
 * Applies config reloads to the key store and announces key changes so every edge drops its
 * verify cache (SPEC §5). A broadcast that cannot go out (NATS down) is retried until it does,
 * or until the edges' caches have expired on their own (`auth.cache_ttl`).
 */
class KeyChangeAnnouncer implements OnModuleInit, OnModuleDestroy {
  private stop?: () => void;
  private retry?: NodeJS.Timeout;

  constructor(
    @Inject(ConfigStore) private readonly config: ConfigStore,
    @Inject(KeyStore) private readonly keys: KeyStore,
    @Inject(AUTH_BUS) private readonly bus: Bus,
    @Inject(AUTH_LOGGER) private readonly logger: Logger,
  ) {}

  onModuleInit(): void {
    this.warnShadowed();
    this.stop = this.config.onChange((next) => {
      if (!this.keys.load(next)) return;
      this.warnShadowed();
      this.logger.info({ version: this.keys.version, keys: next.keys.length }, 'keys changed');
      clearTimeout(this.retry);
      this.announce(this.keys.version, Date.now() + next.auth.cache_ttl);
    });
  }

  onModuleDestroy(): void {
    this.stop?.();
    clearTimeout(this.retry);
  }

  private announce(version: number, giveUpAt: number): void {
    this.bus.emit(AUTH_KEYS_CHANGED, { version, at: new Date().toISOString() }).then(
      () => this.logger.debug({ version }, 'key change announced'),
      (error: unknown) => {
        if (version !== this.keys.version) return; // a newer change is being announced
        if (Date.now() >= giveUpAt) {
          this.logger.error(
            { err: String(error), version },
            'could not announce key change; edge caches have expired since',
          );
          return;
        }
        this.logger.warn(
          { err: String(error), version },
          'could not announce key change yet; retrying',
        );
        this.retry = setTimeout(() => this.announce(version, giveUpAt), RETRY_ANNOUNCE_MS);
        this.retry.unref();
      },
    );
  }

  private warnShadowed(): void {
    if (this.keys.shadowed.length > 0) {
      this.logger.error(
        { key_ids: this.keys.shadowed },
        'keys share their secret with an earlier key and are ignored; give every key its own secret',
      );
    }
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
