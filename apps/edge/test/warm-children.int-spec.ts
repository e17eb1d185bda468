import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from '../../../test/support/eventually.js';
import {
  type InProcessGateway,
  startInProcessGateway,
} from '../../../test/support/in-process-gateway.js';
import { ROOT } from '../../../test/support/processes.js';
import { type Answer, StreamableRawClient } from '../../../test/support/raw-client.js';

// Warm children (`upstream.warm`, issue 19): stdio children started ahead of sessions, so a new
// session's initialize does not wait for a process to boot. A warm child has been sent nothing
// before its session's own initialize; it counts as a child (max_children, the gauge) but is no
// session (no events); one that dies is replaced, with a growing delay when it keeps dying; a
// reload of the namespace's command discards the old ones; shutdown ends them.

const key = `warm-${randomUUID()}`;
const SERVER = join(ROOT, 'test/support/stateless-stdio.mjs');
/** The children's boot: long enough that a session that waits for one cannot hide it. */
const BOOT_MS = 1_500;
const dir = mkdtempSync(join(tmpdir(), 'warm-children-'));
const logOf = (name: string) => join(dir, `${name}.log`);
const configFile = join(dir, 'gateway.yaml');

const stdio = (name: string, extra = '', env = '') =>
  `{ command: "${process.execPath}", args: ["${SERVER}"], env: { STDIO_LOG: "${logOf(name)}", BOOT_DELAY_MS: "${BOOT_MS}"${env} }${extra} }`;
// A command that dies at once, noting when: what a broken install looks like.
const dying = `{ command: "${process.execPath}", args: ["-e", "require('fs').appendFileSync('${logOf('broken')}', Date.now() + '\\\\n')"], warm: 1 }`;

const config = (warmEnv = '') => `
namespaces:
  warm: { upstream: ${stdio('warm', ', warm: 1, max_children: 2', `, GREETING: "hello"${warmEnv}`)} }
  lazy: { upstream: ${stdio('lazy')} }
  off: { upstream: ${stdio('off', ', warm: 0')} }
  broken: { upstream: ${dying} }
keys:
  - { id: warm, key: "${key}", namespaces: ["*"] }
`;

interface LogEntry {
  pid: number;
  boot?: boolean;
  mark?: string;
  message?: { id?: unknown; method?: string };
}

const entries = (name: string): LogEntry[] =>
  existsSync(logOf(name))
    ? readFileSync(logOf(name), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as LogEntry)
    : [];
const booted = (name: string) => entries(name).filter((entry) => entry.boot);
const receivedBy = (name: string, pid: number) =>
  entries(name).filter((entry) => entry.pid === pid && entry.message);
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

let gateway: InProcessGateway;
const url = () => gateway.edges[0].url;

const children = async (namespace: string) =>
  Number(
    new RegExp(`mcp_gateway_stdio_children\\{namespace="${namespace}"\\} (\\d+)`).exec(
      await (await fetch(`${url()}/metrics`)).text(),
    )?.[1] ?? 0,
  );

interface Opened {
  namespace: string;
  client: StreamableRawClient;
  answer: Answer;
  /** initialize and notifications/initialized, as an SDK client's connect. */
  ms: number;
}

const open = async (namespace: string): Promise<Opened> => {
  const client = new StreamableRawClient([url()], namespace, key);
  const started = performance.now();
  const answer = await client.initialize('2025-06-18');
  return { namespace, client, answer, ms: performance.now() - started };
};

const end = async ({ namespace, client }: Opened) => {
  await fetch(`${url()}/mcp/${namespace}`, { method: 'DELETE', headers: client.headers() });
};

/** Booted children of `name` that are alive and have been sent nothing: its warm ones. */
const idle = (name: string) =>
  booted(name).filter((entry) => alive(entry.pid) && receivedBy(name, entry.pid).length === 0);

beforeAll(async () => {
  gateway = await startInProcessGateway(config(), { configFile });
}, 30_000);

afterAll(async () => {
  await gateway?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('warm stdio children', () => {
  it('hands a new session a child started ahead, whose first message is that session’s initialize, and refills the pool', async () => {
    const [warm] = await eventually(() => booted('warm').length === 1 && booted('warm'), 10_000);
    expect(receivedBy('warm', warm.pid)).toEqual([]);
    expect(await children('warm')).toBe(1);
    // A child in the pool is no session: nothing recorded for it.
    await gateway.flush();
    expect(gateway.events.filter((event) => event.namespace === 'warm')).toEqual([]);

    const session = await open('warm');
    expect(session.answer.status).toBe(200);
    // It did not wait for a boot (1.5 s): the child had booted already.
    expect(session.ms).toBeLessThan(BOOT_MS * 0.66);
    const first = receivedBy('warm', warm.pid)[0];
    expect(first.message).toMatchObject({ id: 0, method: 'initialize' });
    // What it said while it waited reaches the session once its initialize is on its way, as
    // from a child started for it.
    expect(session.answer.messages.map((m) => m.method ?? m.id)).toEqual([
      'notifications/message',
      0,
    ]);

    // The pool refills in the background with a child that has been sent nothing.
    const [, next] = await eventually(() => booted('warm').length === 2 && booted('warm'), 10_000);
    expect(next.pid).not.toBe(warm.pid);
    expect(receivedBy('warm', next.pid)).toEqual([]);
    expect(await children('warm')).toBe(2);
    await end(session);
  });

  it('starts no child for a namespace before it is used, keeps one warm after (unless warm is 0)', async () => {
    await eventually(() => booted('warm').length > 0, 10_000);
    expect(booted('lazy')).toEqual([]);
    expect(await children('lazy')).toBe(0);

    const cold = await open('lazy');
    expect(cold.answer.status).toBe(200);
    expect(cold.ms).toBeGreaterThanOrEqual(BOOT_MS); // spawned for it: it waited for the boot
    await eventually(async () => (await children('lazy')) === 2, 10_000, 'a warm lazy child');
    const warmed = await open('lazy');
    expect(warmed.ms).toBeLessThan(BOOT_MS * 0.66);

    const off = await open('off');
    expect(off.ms).toBeGreaterThanOrEqual(BOOT_MS);
    // Its neighbour's pool refilled meanwhile; `off` (warm: 0) still has only its session's child.
    await eventually(async () => (await children('lazy')) === 3, 10_000, 'the lazy pool refilled');
    expect(await children('off')).toBe(1);
    expect(booted('off')).toHaveLength(1);
    await Promise.all([cold, warmed, off].map(end));
  });

  it('counts warm children against max_children: the pool fills only what sessions leave free', async () => {
    await eventually(async () => (await children('warm')) === 1, 10_000, 'one warm child');
    const first = await open('warm'); // takes the warm child; the pool refills: 2 children
    await eventually(async () => (await children('warm')) === 2, 10_000, 'the pool refilled');
    const second = await open('warm'); // takes that one; no room left for another
    expect(second.answer.status).toBe(200);
    const third = await open('warm');
    expect(third.answer.status).toBe(503);
    expect(await children('warm')).toBe(2);

    await end(first); // a place frees up: the pool takes it
    await eventually(() => idle('warm').length === 1, 10_000, 'a warm child again');
    expect(await children('warm')).toBe(2);
    await end(second);
  });

  it('replaces a warm child that dies, with a growing delay while the command keeps dying', async () => {
    const [warm] = await eventually(() => idle('warm').length === 1 && idle('warm'), 10_000);
    process.kill(warm.pid, 'SIGKILL');
    const replacement = await eventually(
      () =>
        booted('warm').find(
          (entry) => entry.pid !== warm.pid && receivedBy('warm', entry.pid).length === 0,
        ),
      10_000,
      'a replacement warm child',
    );
    expect(alive(replacement.pid)).toBe(true);

    // The broken command: replaced again and again, each time later (0.5 s, 1 s, 2 s...).
    const spawns = await eventually(
      () => {
        const times = existsSync(logOf('broken'))
          ? readFileSync(logOf('broken'), 'utf8').split('\n').filter(Boolean).map(Number)
          : [];
        return times.length >= 4 && times;
      },
      15_000,
      'the broken command started four times',
    );
    // Each gap is the delay (0.5 s, doubled each time) plus a Node start (~0.2 s here, more
    // under load): bounds below, and growth between the first and the third.
    const gaps = spawns.slice(1).map((time, i) => time - spawns[i]);
    expect(gaps[0]).toBeGreaterThanOrEqual(450);
    expect(gaps[1]).toBeGreaterThanOrEqual(950);
    expect(gaps[2]).toBeGreaterThanOrEqual(1_950);
    expect(gaps[2]).toBeGreaterThan(gaps[0] + 300);
  }, 30_000);

  it('discards the warm children of a command a reload changed and starts ones of the new', async () => {
    const session = await open('warm');
    const [old] = await eventually(() => idle('warm').length === 1 && idle('warm'), 10_000);
    writeFileSync(configFile, config(', MARK: "v2"'));
    expect(gateway.config.reload()).toBe(true);

    await eventually(() => !alive(old.pid), 10_000, 'the old warm child to end');
    const fresh = await eventually(
      () => booted('warm').find((entry) => entry.mark === 'v2'),
      10_000,
      'a warm child of the new command',
    );
    expect(receivedBy('warm', fresh.pid)).toEqual([]);
    // A session of the old config keeps its child, as before reloads.
    expect((await session.client.post({ jsonrpc: '2.0', id: 1, method: 'ping' })).status).toBe(200);
    await end(session);
  });
});

describe('warm children at shutdown', () => {
  it('ends them with the edge', async () => {
    const log = join(dir, 'own.log');
    const own = await startInProcessGateway(`
namespaces:
  own: { upstream: { command: "${process.execPath}", args: ["${SERVER}"], env: { STDIO_LOG: "${log}" }, warm: 2 } }
`);
    const pids = await eventually(() => {
      const lines = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
      return lines.length === 2 && lines.map((line) => (JSON.parse(line) as LogEntry).pid);
    }, 10_000);
    await own.stop();
    await eventually(() => pids.every((pid) => !alive(pid)), 10_000, 'the warm children to end');
  });
});
