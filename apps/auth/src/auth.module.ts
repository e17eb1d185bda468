import {
  type DynamicModule,
  Inject,
  Module,
  type OnModuleDestroy,
  type OnModuleInit,
} from '@nestjs/common';
import { AUTH_KEYS_CHANGED, type Bus, ConfigStore } from '#common';
import type { Logger } from 'pino';
import { AUTH_BUS, AUTH_LOGGER, RUNTIME_KEYS } from './auth.tokens.js';
import { KeyAdmin } from './keys/key-admin.js';
import { KeyAdminController } from './keys/key-admin.controller.js';
import { KeyStore } from './keys/key-store.js';
import type { RuntimeKeys } from './keys/runtime-keys.js';
import { VerifyController } from './keys/verify.controller.js';

export { AUTH_BUS, AUTH_LOGGER } from './auth.tokens.js';

const RETRY_ANNOUNCE_MS = 1_000;

/**
 * Applies config reloads and changes of the created keys (SPEC §5 v2) to the key store and
 * announces key changes so every edge drops its verify cache (SPEC §5). Every replica watches the
 * store and announces what it applied, so the last announcement of a change comes after every
 * replica answers by it: an edge that asked a replica still behind asks again. A broadcast that
 * cannot go out (NATS down) is retried until it does, or until the edges' caches have expired
 * on their own (`auth.cache_ttl`).
 */
class KeyChangeAnnouncer implements OnModuleInit, OnModuleDestroy {
  private stop?: () => void;
  private retry?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    @Inject(ConfigStore) private readonly config: ConfigStore,
    @Inject(KeyStore) private readonly keys: KeyStore,
    @Inject(AUTH_BUS) private readonly bus: Bus,
    @Inject(AUTH_LOGGER) private readonly logger: Logger,
    @Inject(RUNTIME_KEYS) private readonly runtime: RuntimeKeys | null,
  ) {}

  /** Resolves once the created keys are loaded (bounded: see RuntimeKeys.watch), so verify answers know them. */
  async onModuleInit(): Promise<void> {
    this.warnShadowed();
    this.stop = this.config.onChange((next) => {
      if (this.keys.load(next)) this.changed('config');
    });
    await this.runtime?.watch((records) => {
      if (!this.stopped && this.keys.loadRuntime(records)) this.changed('created keys');
    });
  }

  onModuleDestroy(): void {
    this.stopped = true;
    this.stop?.();
    clearTimeout(this.retry);
  }

  private changed(source: string): void {
    this.warnShadowed();
    this.logger.info({ version: this.keys.version, source }, 'keys changed');
    clearTimeout(this.retry);
    this.announce(this.keys.version, Date.now() + this.config.current.auth.cache_ttl);
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
    if (this.keys.overridden.length > 0) {
      this.logger.warn(
        { key_ids: this.keys.overridden },
        'created keys have the id of a file key, which wins; revoke them or rename the file key',
      );
    }
  }
}

@Module({})
export class AuthModule {
  static forRoot(options: {
    config: ConfigStore;
    bus: Bus;
    logger: Logger;
    /** Where keys created through the admin API live; null: none can be created. */
    runtimeKeys: RuntimeKeys | null;
  }): DynamicModule {
    return {
      module: AuthModule,
      controllers: [VerifyController, KeyAdminController],
      providers: [
        { provide: ConfigStore, useValue: options.config },
        { provide: AUTH_BUS, useValue: options.bus },
        { provide: AUTH_LOGGER, useValue: options.logger },
        { provide: RUNTIME_KEYS, useValue: options.runtimeKeys },
        { provide: KeyStore, useFactory: () => new KeyStore(options.config.current) },
        {
          provide: KeyAdmin,
          useFactory: () =>
            new KeyAdmin(
              options.config,
              options.runtimeKeys,
              options.logger.child({ component: 'admin' }),
            ),
        },
        KeyChangeAnnouncer,
      ],
    };
  }
}
