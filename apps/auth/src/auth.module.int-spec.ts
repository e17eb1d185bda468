import 'reflect-metadata';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AUTH_KEY_VERIFY,
  AUTH_KEYS_CHANGED,
  ConfigStore,
  type KeysChangedEvent,
  NatsBus,
  natsNames,
  sha256Hex,
} from '#common';
import { pino } from 'pino';
import { eventually } from '../../../test/support/eventually.js';
import {
  type PrivateNatsServer,
  startPrivateNatsServer,
} from '../../../test/support/private-nats-server.js';
import { type AuthHandle, startAuth } from './bootstrap.js';

// The auth service over a real nats-server: it answers verify requests with digests only, and a
// key change made while NATS is down still reaches the edges once NATS is back.

const KEY = 'alice-key-0123456789abcdef';
const WITH_ALICE = `keys:\n  - { id: alice, key: "${KEY}", namespaces: ["*"] }\n`;
const WITHOUT_KEYS = 'keys: []\n';

describe('auth service over NATS', () => {
  let nats: PrivateNatsServer;
  let dir: string;
  let config: ConfigStore;
  let authBus: NatsBus;
  let edgeBus: NatsBus;
  let auth: AuthHandle;

  beforeAll(async () => {
    nats = await startPrivateNatsServer();
    dir = mkdtempSync(join(tmpdir(), 'mcpgw-auth-'));
    writeFileSync(join(dir, 'gateway.yaml'), WITH_ALICE);
    config = ConfigStore.fromFile(join(dir, 'gateway.yaml'), {});
    authBus = await NatsBus.connect(nats.url, 'auth-under-test', natsNames());
    edgeBus = await NatsBus.connect(nats.url, 'edge-under-test', natsNames());
    auth = await startAuth({
      config,
      logger: pino({ level: 'silent' }),
      transport: { kind: 'nats', url: nats.url, bus: authBus },
    });
  });

  afterAll(async () => {
    await auth?.close();
    await authBus?.close();
    await edgeBus?.close();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a verify request for the SHA-256 of a key with its principal, and refuses others', async () => {
    const good = await edgeBus.send(AUTH_KEY_VERIFY, { keySha256: sha256Hex(KEY) });
    expect(good).toMatchObject({ ok: true, principal: { keyId: 'alice' } });
    expect(
      await edgeBus.send(AUTH_KEY_VERIFY, { keySha256: sha256Hex('not-a-key-0123456789') }),
    ).toEqual({ ok: false });
  });

  it('announces a key change made while NATS was down once NATS is back', async () => {
    const heard: KeysChangedEvent[] = [];
    edgeBus.subscribe(AUTH_KEYS_CHANGED, (event) => heard.push(event));
    await edgeBus.connection.flush();

    await nats.kill();
    await eventually(
      () => !authBus.isConnected(),
      10_000,
      'the auth service to notice NATS is gone',
      50,
    );
    writeFileSync(join(dir, 'gateway.yaml'), WITHOUT_KEYS);
    expect(config.reload('test')).toBe(true);
    await nats.restart();

    const event = await eventually(() => heard[0], 10_000, 'the key change broadcast', 50);
    expect(event.version).toBeGreaterThan(1);
    // Once the auth service's own subscription is back, the revoked key is refused.
    const answer = await eventually(
      () => edgeBus.send(AUTH_KEY_VERIFY, { keySha256: sha256Hex(KEY) }),
      10_000,
      'a verify answer',
      50,
    );
    expect(answer).toEqual({ ok: false });
  });

  it('answers again after NATS was down longer than a NATS client tries by default (~20 s)', async () => {
    writeFileSync(join(dir, 'gateway.yaml'), WITH_ALICE);
    expect(config.reload('test')).toBe(true);
    await nats.kill();
    await new Promise((resolve) => setTimeout(resolve, 25_000));
    await nats.restart();
    const answer = await eventually(
      () => edgeBus.send(AUTH_KEY_VERIFY, { keySha256: sha256Hex(KEY) }),
      10_000,
      'a verify answer after the outage',
      100,
    );
    expect(answer).toMatchObject({ ok: true, principal: { keyId: 'alice' } });
  }, 60_000);
});
