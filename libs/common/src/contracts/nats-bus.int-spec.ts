import 'reflect-metadata';
import { Controller, type INestMicroservice, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { eventually } from '../../../../test/support/eventually.js';
import {
  type PrivateNatsServer,
  startPrivateNatsServer,
} from '../../../../test/support/private-nats-server.js';
import { sha256Hex } from '../security/keys.js';
import { BusRemoteError, BusTimeoutError, BusUnavailableError } from './bus.js';
import { NatsBus } from './nats-bus.js';
import { NatsBusTransport } from './nats-bus.transport.js';
import { natsNames } from './nats-names.js';
import {
  AUTH_KEY_VERIFY,
  AUTH_KEYS_CHANGED,
  type KeysChangedEvent,
  type Principal,
  type VerifyKeyReply,
  type VerifyKeyRequest,
} from './subjects.js';

// A private nats-server per file: the handlers below serve the real subjects, and other test files
// running at the same time on the shared server serve them too; and this file kills its server.

const ALICE_DIGEST = sha256Hex('alice-key-0123456789');
const ALICE: Principal = {
  keyId: 'alice',
  user: 'alice@acme.example',
  tenant: 'acme',
  role: 'admin',
  namespaces: ['search', 'filesystem'],
  rateLimit: { requests: 600, perMs: 60_000 },
  expiresAt: Date.UTC(2027, 0, 1),
};
const SLOW = 'slow';
const FAILS = 'fails';

async function settleTime(promise: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  return { error, ms: Date.now() - started };
}

const received: { events: KeysChangedEvent[] } = { events: [] };

@Controller()
class AuthController {
  @MessagePattern(AUTH_KEY_VERIFY)
  async verify(@Payload() request: VerifyKeyRequest): Promise<VerifyKeyReply> {
    if (request.keySha256 === SLOW) return new Promise(() => undefined);
    if (request.keySha256 === FAILS) throw new Error('key store unreadable');
    return request.keySha256 === ALICE_DIGEST ? { ok: true, principal: ALICE } : { ok: false };
  }

  @EventPattern(AUTH_KEYS_CHANGED)
  keysChanged(@Payload() event: KeysChangedEvent): void {
    received.events.push(event);
  }
}

@Module({ controllers: [AuthController] })
class AuthTestModule {}

describe('NatsBus against a Nest NATS microservice', () => {
  let server: PrivateNatsServer;
  let app: INestMicroservice;
  let bus: NatsBus;
  const others: NatsBus[] = [];

  beforeAll(async () => {
    server = await startPrivateNatsServer();
  });

  afterAll(async () => {
    await server?.stop();
  });

  beforeEach(async () => {
    received.events = [];
    app = await NestFactory.createMicroservice(AuthTestModule, {
      strategy: new NatsBusTransport(
        { servers: [server.url], queue: 'auth-int-test' },
        natsNames(),
      ),
      logger: false,
    });
    await app.listen();
    bus = await NatsBus.connect(server.url, 'test', natsNames());
  });

  afterEach(async () => {
    await bus.close();
    for (const other of others.splice(0)) await other.close();
    await app.close();
  });

  it('gets the typed reply of a @MessagePattern handler through Nest’s wire format', async () => {
    const reply: VerifyKeyReply = await bus.send(AUTH_KEY_VERIFY, { keySha256: ALICE_DIGEST });
    expect(reply).toEqual({ ok: true, principal: ALICE });
  });

  it('gets a negative reply for an unknown key', async () => {
    await expect(
      bus.send(AUTH_KEY_VERIFY, { keySha256: sha256Hex('unknown-key-0123456') }),
    ).resolves.toEqual({
      ok: false,
    });
  });

  it('is connected', () => {
    expect(bus.isConnected()).toBe(true);
  });

  it('rejects with BusRemoteError when the handler throws', async () => {
    const error = await bus.send(AUTH_KEY_VERIFY, { keySha256: FAILS }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BusRemoteError);
    expect((error as Error).message).toMatch(/^auth\.key\.verify\.v1 failed: /);
  });

  it('rejects with BusTimeoutError when the handler does not answer within the timeout', async () => {
    const { error, ms } = await settleTime(
      bus.send(AUTH_KEY_VERIFY, { keySha256: SLOW }, { timeoutMs: 300 }),
    );
    expect(error).toBeInstanceOf(BusTimeoutError);
    expect(ms).toBeGreaterThanOrEqual(250);
  });

  it('rejects with BusUnavailableError at once, not after the timeout, when the microservice is closed', async () => {
    await app.close();
    // Until the server has processed the close, it may still route a request to the old handler.
    await eventually(
      async () => (await server.subscribers(AUTH_KEY_VERIFY)) === 0,
      5_000,
      'the server to drop the handler',
      10,
    );
    const { error, ms } = await settleTime(
      bus.send(AUTH_KEY_VERIFY, { keySha256: ALICE_DIGEST }, { timeoutMs: 5_000 }),
    );
    expect(error).toBeInstanceOf(BusUnavailableError);
    // "no responders" from the server, far below the 5 s timeout.
    expect(ms).toBeLessThan(1_000);
  });

  it('delivers emit(AUTH_KEYS_CHANGED) to a subscriber on another connection and to the @EventPattern handler', async () => {
    const listener = await NatsBus.connect(server.url, 'test-listener', natsNames());
    others.push(listener);
    const heard: KeysChangedEvent[] = [];
    listener.subscribe(AUTH_KEYS_CHANGED, (event) => heard.push(event));
    await listener.connection.flush(); // the subscription has reached the server

    const event: KeysChangedEvent = { version: 42, at: '2026-05-01T12:00:00.000Z' };
    await bus.emit(AUTH_KEYS_CHANGED, event);

    await eventually(
      () => heard.length === 1 && received.events.length === 1,
      5_000,
      'the subscriber and the handler',
      10,
    );
    expect(heard).toEqual([event]);
    expect(received.events).toEqual([event]);
  });

  it('stops delivering to a subscriber once it unsubscribed', async () => {
    const listener = await NatsBus.connect(server.url, 'test-listener', natsNames());
    others.push(listener);
    const heard: number[] = [];
    const unsubscribe = listener.subscribe(AUTH_KEYS_CHANGED, (event) => heard.push(event.version));
    await listener.connection.flush();
    await bus.emit(AUTH_KEYS_CHANGED, { version: 1, at: 'now' });
    await eventually(
      () => heard.length === 1 && received.events.length === 1,
      5_000,
      'the first event',
      10,
    );

    unsubscribe();
    await listener.connection.flush();
    await bus.emit(AUTH_KEYS_CHANGED, { version: 2, at: 'now' });
    // The handler on the microservice is the witness that the second event was delivered.
    await eventually(
      () => received.events.length === 2,
      5_000,
      'the second event at the handler',
      10,
    );
    await listener.connection.flush();
    expect(heard).toEqual([1]);
  });

  it('keeps a subscription alive past a malformed broadcast', async () => {
    const listener = await NatsBus.connect(server.url, 'test-listener', natsNames());
    others.push(listener);
    const heard: number[] = [];
    listener.subscribe(AUTH_KEYS_CHANGED, (event) => heard.push(event.version));
    await listener.connection.flush();
    bus.connection.publish(AUTH_KEYS_CHANGED, 'not json');
    await bus.emit(AUTH_KEYS_CHANGED, { version: 3, at: 'now' });
    await eventually(() => heard.length === 1, 5_000, 'the well-formed event', 10);
    expect(heard).toEqual([3]);
  });
});

describe('NatsBus and NatsBusTransport with a prefix (events.nats_prefix)', () => {
  const blue = natsNames('blue');
  let server: PrivateNatsServer;
  let app: INestMicroservice;
  const buses: NatsBus[] = [];
  const connectBus = async (prefix?: string) => {
    const bus = await NatsBus.connect(server.url, `test-${prefix ?? 'v1'}`, natsNames(prefix));
    buses.push(bus);
    return bus;
  };

  beforeAll(async () => {
    server = await startPrivateNatsServer();
    app = await NestFactory.createMicroservice(AuthTestModule, {
      strategy: new NatsBusTransport({ servers: [server.url], queue: 'auth-int-test' }, blue),
      logger: false,
    });
    await app.listen();
  });

  afterAll(async () => {
    for (const bus of buses) await bus.close();
    await app?.close();
    await server?.stop();
  });

  it('serves the handlers on the prefixed subjects, not on the v1 ones', async () => {
    // The server registers a subscription once it has read the SUB: not always by listen().
    for (const subject of ['blue.auth.key.verify.v1', 'blue.auth.keys.changed.v1']) {
      await eventually(async () => (await server.subscribers(subject)) === 1, 5_000, subject);
    }
    expect(await server.subscribers('auth.key.verify.v1')).toBe(0);
    expect(await server.subscribers('auth.keys.changed.v1')).toBe(0);
  });

  it('answers a bus of the same prefix; a bus without one or with another hears no responders', async () => {
    const reply = await (
      await connectBus('blue')
    ).send(AUTH_KEY_VERIFY, { keySha256: ALICE_DIGEST });
    expect(reply).toEqual({ ok: true, principal: ALICE });
    for (const [prefix, subject] of [
      [undefined, 'auth.key.verify.v1'],
      ['green', 'green.auth.key.verify.v1'],
    ]) {
      const error = await (
        await connectBus(prefix)
      )
        .send(AUTH_KEY_VERIFY, { keySha256: ALICE_DIGEST }, { timeoutMs: 5_000 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BusUnavailableError);
      expect((error as Error).message).toBe(`no service answers ${subject}`);
    }
  });

  it('delivers a broadcast to the subscribers and handlers of its own prefix only', async () => {
    received.events = [];
    const heard: Record<string, number[]> = { blue: [], green: [], v1: [] };
    for (const prefix of ['blue', 'green', undefined]) {
      const listener = await connectBus(prefix);
      listener.subscribe(AUTH_KEYS_CHANGED, (event) => heard[prefix ?? 'v1'].push(event.version));
      await listener.connection.flush();
    }
    await (await connectBus('green')).emit(AUTH_KEYS_CHANGED, { version: 1, at: 'now' });
    await (await connectBus()).emit(AUTH_KEYS_CHANGED, { version: 2, at: 'now' });
    await (await connectBus('blue')).emit(AUTH_KEYS_CHANGED, { version: 3, at: 'now' });
    await eventually(
      () => heard.blue.length > 0 && heard.green.length > 0 && heard.v1.length > 0,
      5_000,
      'every listener to hear its broadcast',
      10,
    );
    // The blue one was emitted last: had another reached the blue handler, it would be there.
    await eventually(() => received.events.length > 0, 5_000, 'the blue handler', 10);
    expect(heard).toEqual({ blue: [3], green: [1], v1: [2] });
    expect(received.events.map((event) => event.version)).toEqual([3]);
  });
});

describe('NatsBus when its NATS server dies', () => {
  let server: PrivateNatsServer;
  let bus: NatsBus;

  beforeAll(async () => {
    server = await startPrivateNatsServer();
  });

  afterAll(async () => {
    await bus?.connection.close();
    await server?.stop();
  });

  it('turns isConnected() false when the server is killed', async () => {
    bus = await NatsBus.connect(server.url, 'test', natsNames());
    expect(bus.isConnected()).toBe(true);
    await server.kill();
    await eventually(() => !bus.isConnected(), 5_000, 'isConnected() to turn false', 10);
  });

  it('then rejects send() with BusUnavailableError at once', async () => {
    const { error, ms } = await settleTime(
      bus.send(AUTH_KEY_VERIFY, { keySha256: ALICE_DIGEST }, { timeoutMs: 5_000 }),
    );
    expect(error).toBeInstanceOf(BusUnavailableError);
    expect(ms).toBeLessThan(100);
  });

  it('then rejects emit() with BusUnavailableError at once', async () => {
    const { error, ms } = await settleTime(bus.emit(AUTH_KEYS_CHANGED, { version: 1, at: 'now' }));
    expect(error).toBeInstanceOf(BusUnavailableError);
    expect(ms).toBeLessThan(100);
  });

  it('turns isConnected() true again when the server comes back', async () => {
    await server.restart();
    await eventually(() => bus.isConnected(), 10_000, 'isConnected() to turn true', 10);
    // Connected for real: the server answers, with "no responders" as nobody serves the subject.
    await expect(bus.send(AUTH_KEY_VERIFY, { keySha256: ALICE_DIGEST })).rejects.toBeInstanceOf(
      BusUnavailableError,
    );
    await bus.connection.flush();
  });

  it('closes without error while the server is down', async () => {
    await server.kill();
    await eventually(() => !bus.isConnected(), 5_000, 'isConnected() to turn false', 10);
    await expect(bus.close()).resolves.toBeUndefined();
    expect(bus.connection.isClosed()).toBe(true);
  });
});
