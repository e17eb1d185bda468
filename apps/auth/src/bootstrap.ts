import { NestFactory } from '@nestjs/core';
import { type INestMicroservice } from '@nestjs/common';
import { type MicroserviceOptions, Transport } from '@nestjs/microservices';
import {
  type Bus,
  type ConfigStore,
  InProcessBus,
  InProcessTransport,
  PinoNestLogger,
} from '#common';
import type { Logger } from 'pino';
import { AuthModule } from './auth.module.js';

export interface AuthOptions {
  config: ConfigStore;
  logger: Logger;
  /** In process (standalone) or over NATS (distributed). */
  transport: { kind: 'in-process'; bus: InProcessBus } | { kind: 'nats'; url: string; bus: Bus };
}

export interface AuthHandle {
  close(): Promise<void>;
}

/** Starts the auth service: the verify handler answers on the bus until close(). */
export async function startAuth(options: AuthOptions): Promise<AuthHandle> {
  const bus = options.transport.bus;
  const microserviceOptions: MicroserviceOptions =
    options.transport.kind === 'nats'
      ? {
          transport: Transport.NATS,
          // A queue group: several auth replicas share the load, each request answered once.
          options: { servers: options.transport.url.split(','), queue: 'auth', name: 'auth' },
        }
      : { strategy: new InProcessTransport(options.transport.bus) };
  const app: INestMicroservice = await NestFactory.createMicroservice(
    AuthModule.forRoot({ config: options.config, bus, logger: options.logger }),
    { ...microserviceOptions, logger: new PinoNestLogger(options.logger) },
  );
  await app.listen();
  options.logger.info({ keys: options.config.current.keys.length }, 'auth service ready');
  return {
    close: async () => {
      await app.close();
    },
  };
}
