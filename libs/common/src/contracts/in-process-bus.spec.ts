import 'reflect-metadata';
import { Controller, type INestMicroservice, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { delay, Observable, of } from 'rxjs';
import { eventually } from '../../../../test/support/eventually.js';
import { BusRemoteError, BusTimeoutError, BusUnavailableError } from './bus.js';
import { InProcessBus } from './in-process-bus.js';
import { InProcessTransport } from './in-process.transport.js';
import {
  AUTH_KEY_VERIFY,
  AUTH_KEYS_CHANGED,
  type KeysChangedEvent,
  type Principal,
  type VerifyKeyReply,
  type VerifyKeyRequest,
} from './subjects.js';

const PRINCIPAL: Principal = {
  keyId: 'alice',
  user: 'alice@acme.example',
  tenant: 'acme',
  role: 'user',
  namespaces: ['search'],
  rateLimit: { requests: 600, perMs: 60_000 },
  expiresAt: null,
};

/** What the test controller saw; reset per test. */
const seen: { requests: VerifyKeyRequest[]; events: KeysChangedEvent[]; shared: VerifyKeyReply } = {
  requests: [],
  events: [],
  shared: { ok: true, principal: structuredClone(PRINCIPAL) },
};

/**
 * The key in the request picks how the handler answers, so one controller covers every shape of
 * Nest handler (plain value, promise, Observable) and every failure.
 */
@Controller()
class AuthController {
  @MessagePattern(AUTH_KEY_VERIFY)
  verify(@Payload() request: VerifyKeyRequest): unknown {
    seen.requests.push(request);
    switch (request.keySha256) {
      case 'sync':
        return { ok: true, principal: PRINCIPAL };
      case 'async':
        return new Promise<VerifyKeyReply>((resolve) => setImmediate(() => resolve({ ok: false })));
      case 'observable':
        return of<VerifyKeyReply>({
          ok: true,
          principal: { ...PRINCIPAL, keyId: 'from-observable' },
        }).pipe(delay(1));
      case 'never':
        return new Promise(() => undefined);
      case 'never-observable':
        return new Observable(() => undefined);
      case 'throws':
        throw new Error('database on fire');
      case 'shared':
        return seen.shared;
      case 'mutates':
        request.keySha256 = 'changed by the handler';
        return { ok: true };
      default:
        return { ok: false };
    }
  }

  @EventPattern(AUTH_KEYS_CHANGED)
  keysChanged(@Payload() event: KeysChangedEvent): void {
    seen.events.push(event);
  }
}

@Module({ controllers: [AuthController] })
class AuthTestModule {}

describe('InProcessBus with InProcessTransport serving a Nest microservice', () => {
  let bus: InProcessBus;
  let app: INestMicroservice;

  beforeEach(async () => {
    seen.requests = [];
    seen.events = [];
    seen.shared = { ok: true, principal: structuredClone(PRINCIPAL) };
    bus = new InProcessBus();
    app = await NestFactory.createMicroservice(AuthTestModule, {
      strategy: new InProcessTransport(bus),
      logger: false,
    });
    await app.listen();
  });

  afterEach(async () => {
    await app.close();
    await bus.close();
  });

  it('returns the reply of a handler that returns a plain value', async () => {
    await expect(bus.send(AUTH_KEY_VERIFY, { keySha256: 'sync' })).resolves.toEqual({
      ok: true,
      principal: PRINCIPAL,
    });
  });

  it('returns the reply of a handler that returns a promise', async () => {
    await expect(bus.send(AUTH_KEY_VERIFY, { keySha256: 'async' })).resolves.toEqual({ ok: false });
  });

  it('returns the reply of a handler that returns an Observable', async () => {
    const reply = await bus.send(AUTH_KEY_VERIFY, { keySha256: 'observable' });
    expect(reply.principal?.keyId).toBe('from-observable');
  });

  it('hands the handler the request payload', async () => {
    await bus.send(AUTH_KEY_VERIFY, { keySha256: 'sync' });
    expect(seen.requests).toEqual([{ keySha256: 'sync' }]);
  });

  it('rejects with BusTimeoutError when the handler does not answer in time', async () => {
    const started = Date.now();
    const error = await bus
      .send(AUTH_KEY_VERIFY, { keySha256: 'never' }, { timeoutMs: 50 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BusTimeoutError);
    expect((error as Error).message).toBe('auth.key.verify.v1 did not answer within 50ms');
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
  });

  it('rejects with BusTimeoutError when the handler’s Observable never emits', async () => {
    await expect(
      bus.send(AUTH_KEY_VERIFY, { keySha256: 'never-observable' }, { timeoutMs: 50 }),
    ).rejects.toBeInstanceOf(BusTimeoutError);
  });

  it('rejects with BusRemoteError when the handler throws, as it would over NATS', async () => {
    const error = await bus.send(AUTH_KEY_VERIFY, { keySha256: 'throws' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BusRemoteError);
    expect((error as Error).message).toMatch(/^auth\.key\.verify\.v1 failed: /);
  });

  it('rejects with BusUnavailableError once the microservice is closed', async () => {
    await app.close();
    await expect(bus.send(AUTH_KEY_VERIFY, { keySha256: 'sync' })).rejects.toBeInstanceOf(
      BusUnavailableError,
    );
  });

  it('hands the handler a copy of the request: the caller’s object is not the handler’s', async () => {
    const request = { keySha256: 'mutates' };
    await bus.send(AUTH_KEY_VERIFY, request);
    expect(request).toEqual({ keySha256: 'mutates' });
    expect(seen.requests[0]).not.toBe(request);
  });

  it('returns a copy of the reply: the caller cannot change the handler’s object', async () => {
    const reply = await bus.send(AUTH_KEY_VERIFY, { keySha256: 'shared' });
    expect(reply).toEqual(seen.shared);
    reply.principal!.namespaces.push('everything');
    expect(seen.shared.principal?.namespaces).toEqual(['search']);
  });

  it('delivers an emitted event to the @EventPattern handler', async () => {
    const event = { version: 3, at: '2026-01-01T00:00:00.000Z' };
    await bus.emit(AUTH_KEYS_CHANGED, event);
    await eventually(() => seen.events.length === 1, 2_000, 'the event handler', 5);
    expect(seen.events).toEqual([event]);
    expect(seen.events[0]).not.toBe(event);
  });

  it('delivers an emitted event to the @EventPattern handler and to every subscriber', async () => {
    const received: KeysChangedEvent[][] = [[], []];
    bus.subscribe(AUTH_KEYS_CHANGED, (event) => received[0].push(event));
    bus.subscribe(AUTH_KEYS_CHANGED, (event) => received[1].push(event));
    await bus.emit(AUTH_KEYS_CHANGED, { version: 1, at: 'now' });
    await eventually(
      () => received.every((list) => list.length === 1) && seen.events.length === 1,
      2_000,
      'every receiver',
      5,
    );
    expect(received).toEqual([[{ version: 1, at: 'now' }], [{ version: 1, at: 'now' }]]);
    expect(received[0][0]).not.toBe(received[1][0]);
  });

  it('stops delivering the @EventPattern handler’s events once the microservice is closed', async () => {
    await app.close();
    const received: KeysChangedEvent[] = [];
    bus.subscribe(AUTH_KEYS_CHANGED, (event) => received.push(event));
    await bus.emit(AUTH_KEYS_CHANGED, { version: 1, at: 'now' });
    await eventually(() => received.length === 1, 2_000, 'the remaining subscriber', 5);
    expect(seen.events).toEqual([]);
  });
});

describe('InProcessBus', () => {
  it('rejects with BusUnavailableError when no handler serves the subject', async () => {
    const bus = new InProcessBus();
    const error = await bus.send(AUTH_KEY_VERIFY, { keySha256: 'x' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BusUnavailableError);
    expect((error as Error).message).toBe('no service answers auth.key.verify.v1');
  });

  it('rejects with BusUnavailableError after close()', async () => {
    const bus = new InProcessBus();
    bus.registerRequestHandler(AUTH_KEY_VERIFY, () => ({ ok: true }));
    await bus.close();
    await expect(bus.send(AUTH_KEY_VERIFY, { keySha256: 'x' })).rejects.toBeInstanceOf(
      BusUnavailableError,
    );
  });

  it('is always connected', () => {
    expect(new InProcessBus().isConnected()).toBe(true);
  });

  it('gives subscribers the payload as it was at emit(), not as the caller changed it afterwards', async () => {
    const bus = new InProcessBus();
    const received: KeysChangedEvent[] = [];
    bus.subscribe(AUTH_KEYS_CHANGED, (event) => received.push(event));
    const event = { version: 1, at: 'then' };
    const emitted = bus.emit(AUTH_KEYS_CHANGED, event);
    event.version = 2;
    await emitted;
    await eventually(() => received.length === 1, 2_000, 'the subscriber', 5);
    expect(received).toEqual([{ version: 1, at: 'then' }]);
  });

  it('keeps delivering to other subscribers when one throws', async () => {
    const bus = new InProcessBus();
    const received: number[] = [];
    bus.subscribe(AUTH_KEYS_CHANGED, () => {
      throw new Error('subscriber bug');
    });
    bus.subscribe(AUTH_KEYS_CHANGED, (event) => received.push(event.version));
    await expect(bus.emit(AUTH_KEYS_CHANGED, { version: 7, at: 'now' })).resolves.toBeUndefined();
    await eventually(() => received.length === 1, 2_000, 'the healthy subscriber', 5);
    expect(received).toEqual([7]);
  });

  it('stops delivering to a subscriber once it unsubscribed', async () => {
    const bus = new InProcessBus();
    const first: number[] = [];
    const second: number[] = [];
    const unsubscribe = bus.subscribe(AUTH_KEYS_CHANGED, (event) => first.push(event.version));
    bus.subscribe(AUTH_KEYS_CHANGED, (event) => second.push(event.version));
    await bus.emit(AUTH_KEYS_CHANGED, { version: 1, at: 'now' });
    await eventually(() => first.length === 1 && second.length === 1, 2_000, 'both subscribers', 5);
    unsubscribe();
    await bus.emit(AUTH_KEYS_CHANGED, { version: 2, at: 'now' });
    await eventually(() => second.length === 2, 2_000, 'the remaining subscriber', 5);
    expect(first).toEqual([1]);
  });
});
