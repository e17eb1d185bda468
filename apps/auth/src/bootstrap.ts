import { NestFactory } from '@nestjs/core';
import { type INestMicroservice } from '@nestjs/common';
import type { MicroserviceOptions } from '@nestjs/microservices';
import {
  type ConfigStore,
  InProcessBus,
  InProcessTransport,
  type NatsBus,
  NatsBusTransport,
  PinoNestLogger,
} from '#common';
import type { Logger } from 'pino';
import { AuthModule } from './auth.module.js';
import { FileRuntimeKeys } from './keys/file-runtime-keys.js';

export { KeysFileError } from './keys/file-runtime-keys.js';
import { KvRuntimeKeys } from './keys/kv-runtime-keys.js';
import type { RuntimeKeys } from './keys/runtime-keys.js';

export interface AuthOptions {
  config: ConfigStore;
  logger: Logger;
  /**
   * In process (standalone) or over NATS (distributed). Over NATS the handlers answer on the
   * subjects the bus sends to (its `names`), so the service and its bus share one prefix.
   */
  transport:
    { kind: 'in-process'; bus: InProcessBus } | { kind: 'nats'; url: string; bus: NatsBus };
  /**
   * In process (standalone): the file holding the keys created through the admin API, beside the
   * DuckDB file (SPEC §5 v2); without it none can be created. Over NATS they live in the
   * deployment's key-value bucket (`names.keysBucket`).
   */
  keysFile?: string;
}

export interface AuthHandle {
  close(): Promise<void>;
}

/** Starts the auth service: the verify handler answers on the bus until close(). */
export async function startAuth(options: AuthOptions): Promise<AuthHandle> {
  const bus = options.transport.bus;
  const runtimeKeys: RuntimeKeys | null =
    options.transport.kind === 'nats'
      ? new KvRuntimeKeys(
          options.transport.bus.connection,
          options.transport.bus.names.keysBucket,
          options.logger.child({ component: 'keys' }),
        )
      : options.keysFile !== undefined
        ? new FileRuntimeKeys(options.keysFile)
        : null;
  const microserviceOptions: MicroserviceOptions =
    options.transport.kind === 'nats'
      ? {
          strategy: new NatsBusTransport(
            // A queue group: several auth replicas share the load, each request answered once.
            { servers: options.transport.url.split(','), queue: 'auth', name: 'auth' },
            options.transport.bus.names,
          ),
        }
      : { strategy: new InProcessTransport(options.transport.bus) };
  const app: INestMicroservice = await NestFactory.createMicroservice(
    AuthModule.forRoot({ config: options.config, bus, logger: options.logger, runtimeKeys }),
    { ...microserviceOptions, logger: new PinoNestLogger(options.logger) },
  );
  try {
    await app.listen();
  } catch (error) {
    await app.close().catch(() => undefined);
    await runtimeKeys?.close();
    throw error;
  }
  options.logger.info(
    { keys: options.config.current.keys.length, created_keys: runtimeKeys?.list().length ?? 0 },
    'auth service ready',
  );
  return {
    close: async () => {
      await app.close();
      await runtimeKeys?.close();
    },
  };
}
